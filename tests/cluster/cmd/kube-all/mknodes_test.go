package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseIPs(t *testing.T) {
	got := map[string]string{}
	in := "gpu-node-1=10.1.0.1, gpu-node-2=10.1.0.2\n# a comment\ncpu-node-1=10.1.0.9 # trailing\n\n"
	if err := parseIPs(in, got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"gpu-node-1": "10.1.0.1", "gpu-node-2": "10.1.0.2", "cpu-node-1": "10.1.0.9"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	if err := parseIPs("gpu-node-1", map[string]string{}); err == nil {
		t.Error("an entry without '=' was accepted")
	}
}

func TestBaselineNodes(t *testing.T) {
	ips := map[string]string{"gpu-node-2": "10.9.9.9"}
	cases := []struct {
		name, ip, product string
		gpus              int64
	}{
		{"gpu-node-1", "127.10.0.1", "NVIDIA-H100-80GB-HBM3", 1},
		{"gpu-node-2", "10.9.9.9", "NVIDIA-A100-SXM4-80GB", 4},
		{"gpu-node-3", "127.10.0.3", "NVIDIA-H100-80GB-HBM3", 8},
		{"gpu-node-300", "127.10.1.44", "NVIDIA-H100-80GB-HBM3", 8},
		{"cpu-node-1", "127.20.0.1", "", 0},
	}
	for _, c := range cases {
		n := baselineNode(c.name, ips)
		if got := internalIP(n); got != c.ip {
			t.Errorf("%s: InternalIP %s, want %s", c.name, got, c.ip)
		}
		if got := n.Labels[productLabel]; got != c.product {
			t.Errorf("%s: product %q, want %q", c.name, got, c.product)
		}
		q, ok := n.Status.Capacity[gpuResource]
		if c.gpus == 0 && ok || c.gpus > 0 && q.Value() != c.gpus {
			t.Errorf("%s: nvidia.com/gpu %v, want %d", c.name, q.String(), c.gpus)
		}
		pods := n.Status.Capacity[corev1.ResourcePods]
		if n.Labels["type"] != "kwok" || n.Annotations[kwokAnnotation] != kwokValue ||
			n.Status.Allocatable.Cpu().Value() != 32 || pods.Cmp(n.Status.Allocatable[corev1.ResourcePods]) != 0 {
			t.Errorf("%s: common baseline missing: %v %v", c.name, n.Labels, n.Status.Allocatable)
		}
	}
	if n := baselineNode("gpu-node-1", nil); n.Labels["nvidia.com/gpu.present"] != "true" || n.Labels["nvidia.com/gpu.count"] != "1" {
		t.Errorf("gpu-node-1 labels: %v", n.Labels)
	}
	if n := baselineNode("gpu-node-2", nil); n.Labels["feature.node.kubernetes.io/pci-10de.present"] != "true" {
		t.Errorf("gpu-node-2 labels: %v", n.Labels)
	}
}

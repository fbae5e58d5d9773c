package main

// The -record bodies against gpuctl's: the expected patches are copied from
// tests/unit/test_plan.c (what label_plan_node / taint_plan_node send), so a
// change on either side shows here.

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func node(t *testing.T, s string) *corev1.Node {
	t.Helper()
	var n corev1.Node
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("node %s: %v", s, err)
	}
	return &n
}

func TestLabelPatch(t *testing.T) {
	cases := []struct {
		name, node string
		want       []kv
		patch      string // "" = nothing to write
	}{
		{"add", `{"metadata":{"name":"gpu-1","labels":{"a":"1"}}}`, []kv{{"b", "2"}},
			`[{"op":"test","path":"/metadata/labels","value":{"a":"1"}},{"op":"add","path":"/metadata/labels/b","value":"2"},{"op":"add","path":"/metadata/annotations","value":{"gpuctl.io/added-labels":"[\"b\"]"}}]`},
		{"same value: nothing to write", `{"metadata":{"name":"gpu-1","labels":{"a":"1"}}}`, []kv{{"a", "1"}}, ""},
		{"overwrite", `{"metadata":{"name":"gpu-1","labels":{"a":"1"}}}`, []kv{{"a", "2"}},
			`[{"op":"test","path":"/metadata/labels","value":{"a":"1"}},{"op":"add","path":"/metadata/labels/a","value":"2"},{"op":"add","path":"/metadata/annotations","value":{"gpuctl.io/overwritten-labels":"{\"a\":\"1\"}"}}]`},
		{"a key with / is escaped in the JSON pointer", `{"metadata":{"name":"gpu-1","labels":{}}}`, []kv{{"nvidia.com/gpu.deploy", "true"}},
			`[{"op":"test","path":"/metadata/labels","value":{}},{"op":"add","path":"/metadata/labels/nvidia.com~1gpu.deploy","value":"true"},{"op":"add","path":"/metadata/annotations","value":{"gpuctl.io/added-labels":"[\"nvidia.com/gpu.deploy\"]"}}]`},
		{"no labels at all: the whole map is added", `{"metadata":{"name":"gpu-1"}}`, []kv{{"a", "1"}},
			`[{"op":"add","path":"/metadata/labels","value":{"a":"1"}},{"op":"add","path":"/metadata/annotations","value":{"gpuctl.io/added-labels":"[\"a\"]"}}]`},
		{"record: an added label joins the record, other annotations untouched",
			`{"metadata":{"name":"gpu-1","labels":{"x":"1"},"annotations":{"gpuctl.io/added-labels":"[\"x\"]","other":"y"}}}`, []kv{{"b", "2"}},
			`[{"op":"test","path":"/metadata/labels","value":{"x":"1"}},{"op":"add","path":"/metadata/labels/b","value":"2"},{"op":"test","path":"/metadata/annotations/gpuctl.io~1added-labels","value":"[\"x\"]"},{"op":"add","path":"/metadata/annotations/gpuctl.io~1added-labels","value":"[\"x\",\"b\"]"}]`},
		{"record: overwriting a label gpuctl added keeps it gpuctl's, no old value kept",
			`{"metadata":{"name":"gpu-1","labels":{"a":"1"},"annotations":{"gpuctl.io/added-labels":"[\"a\"]"}}}`, []kv{{"a", "2"}},
			`[{"op":"test","path":"/metadata/labels","value":{"a":"1"}},{"op":"add","path":"/metadata/labels/a","value":"2"}]`},
		{"record: a person's label overwritten again keeps the first old value",
			`{"metadata":{"name":"gpu-1","labels":{"a":"2"},"annotations":{"gpuctl.io/overwritten-labels":"{\"a\":\"1\"}"}}}`, []kv{{"a", "3"}},
			`[{"op":"test","path":"/metadata/labels","value":{"a":"2"}},{"op":"add","path":"/metadata/labels/a","value":"3"}]`},
		// not in test_plan.c: the benchmark's case, both defaults on a
		// kwok node with annotations, and the record's order kept
		{"defaults on a node with annotations",
			`{"metadata":{"name":"gpu-1","labels":{"nvidia.com/gpu.product":"NVIDIA-H100-80GB-HBM3"},"annotations":{"kwok.x-k8s.io/node":"fake"}}}`,
			[]kv{{"accelerator", "nvidia"}, {"gpu-type", "NVIDIA-H100-80GB-HBM3"}},
			`[{"op":"test","path":"/metadata/labels","value":{"nvidia.com/gpu.product":"NVIDIA-H100-80GB-HBM3"}},{"op":"add","path":"/metadata/labels/accelerator","value":"nvidia"},{"op":"add","path":"/metadata/labels/gpu-type","value":"NVIDIA-H100-80GB-HBM3"},{"op":"add","path":"/metadata/annotations/gpuctl.io~1added-labels","value":"[\"accelerator\",\"gpu-type\"]"}]`},
		{"overwritten record keeps its order", `{"metadata":{"name":"gpu-1","labels":{"z":"1","b":"2"},"annotations":{"gpuctl.io/overwritten-labels":"{\"z\":\"0\"}"}}}`,
			[]kv{{"b", "3"}},
			`[{"op":"test","path":"/metadata/labels","value":{"b":"2","z":"1"}},{"op":"add","path":"/metadata/labels/b","value":"3"},{"op":"test","path":"/metadata/annotations/gpuctl.io~1overwritten-labels","value":"{\"z\":\"0\"}"},{"op":"add","path":"/metadata/annotations/gpuctl.io~1overwritten-labels","value":"{\"z\":\"0\",\"b\":\"2\"}"}]`},
	}
	for _, c := range cases {
		got := string(labelPatch(node(t, c.node), c.want))
		if got != c.patch {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.patch)
		}
	}
}

func TestDefaultLabels(t *testing.T) {
	n := node(t, `{"metadata":{"labels":{"nvidia.com/gpu.product":"NVIDIA-H100-80GB-HBM3-SHARED"}}}`)
	if got := defaultLabels(n); len(got) != 2 || got[0] != (kv{"accelerator", "nvidia"}) ||
		got[1] != (kv{"gpu-type", "NVIDIA-H100-80GB-HBM3"}) {
		t.Errorf("defaults of a shared GPU: %v", got)
	}
	if got := defaultLabels(node(t, `{"metadata":{}}`)); len(got) != 1 {
		t.Errorf("no product, no gpu-type: %v", got)
	}
}

const (
	gpuTaint   = `{"key":"nvidia.com/gpu","value":"true","effect":"NoSchedule","timeAdded":"2026-01-01T00:00:00Z"}`
	otherTaint = `{"key":"team","value":"ml","effect":"NoExecute"}`
)

func TestTaintPatch(t *testing.T) {
	cases := []struct {
		name, node string
		taint      corev1.Taint
		patch      string
	}{
		{"add to a node without taints", `{"metadata":{"name":"gpu-1"},"spec":{"podCIDR":"10.0.0.0/24"}}`,
			corev1.Taint{Key: "nvidia.com/gpu", Value: "true", Effect: "NoSchedule"},
			`[{"op":"test","path":"/spec","value":{"podCIDR":"10.0.0.0/24"}},{"op":"add","path":"/spec/taints","value":[{"key":"nvidia.com/gpu","value":"true","effect":"NoSchedule"}]},{"op":"add","path":"/metadata/annotations","value":{"gpuctl.io/added-taints":"[\"nvidia.com/gpu:NoSchedule\"]"}}]`},
		{"the same taint: unchanged", `{"metadata":{"name":"gpu-1"},"spec":{"taints":[` + otherTaint + `,` + gpuTaint + `]}}`,
			corev1.Taint{Key: "nvidia.com/gpu", Value: "true", Effect: "NoSchedule"}, ""},
		{"overwrite: added first, then the old ones", `{"metadata":{"name":"gpu-1"},"spec":{"podCIDR":"10.0.0.0/24","taints":[` + otherTaint + `,` + gpuTaint + `]}}`,
			corev1.Taint{Key: "nvidia.com/gpu", Value: "false", Effect: "NoSchedule"},
			`[{"op":"test","path":"/spec/taints","value":[` + otherTaint + `,` + gpuTaint + `]},{"op":"replace","path":"/spec/taints","value":[{"key":"nvidia.com/gpu","value":"false","effect":"NoSchedule"},` + otherTaint + `]}]`},
		// the benchmark's case: the node as the label patch returned it
		{"after gpuctl's labels", `{"metadata":{"name":"gpu-1","annotations":{"gpuctl.io/added-labels":"[\"accelerator\",\"gpu-type\"]"}},"spec":{"providerID":"kwok://gpu-1"}}`,
			corev1.Taint{Key: "nvidia.com/gpu", Value: "true", Effect: "NoSchedule"},
			`[{"op":"test","path":"/spec","value":{"providerID":"kwok://gpu-1"}},{"op":"add","path":"/spec/taints","value":[{"key":"nvidia.com/gpu","value":"true","effect":"NoSchedule"}]},{"op":"add","path":"/metadata/annotations/gpuctl.io~1added-taints","value":"[\"nvidia.com/gpu:NoSchedule\"]"}]`},
	}
	for _, c := range cases {
		got := string(taintPatch(node(t, c.node), c.taint))
		if got != c.patch {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.patch)
		}
	}
}

// gpuctl label --taint: the case of tests/unit/test_plan.c's
// label_and_taint_in_one_patch (no annotations object: the label patch
// creates it, the taint operations add into it).
func TestBothPatch(t *testing.T) {
	n := node(t, `{"metadata":{"name":"gpu-1","labels":{"nvidia.com/gpu.product":"NVIDIA-H100-80GB-HBM3"}},"spec":{"podCIDR":"10.0.0.0/24"}}`)
	taint := corev1.Taint{Key: "nvidia.com/gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	want := `[{"op":"test","path":"/metadata/labels","value":{"nvidia.com/gpu.product":"NVIDIA-H100-80GB-HBM3"}},` +
		`{"op":"add","path":"/metadata/labels/accelerator","value":"nvidia"},` +
		`{"op":"add","path":"/metadata/labels/gpu-type","value":"NVIDIA-H100-80GB-HBM3"},` +
		`{"op":"add","path":"/metadata/annotations","value":{"gpuctl.io/added-labels":"[\"accelerator\",\"gpu-type\"]"}},` +
		`{"op":"test","path":"/spec","value":{"podCIDR":"10.0.0.0/24"}},` +
		`{"op":"add","path":"/spec/taints","value":[{"key":"nvidia.com/gpu","value":"true","effect":"NoSchedule"}]},` +
		`{"op":"add","path":"/metadata/annotations/gpuctl.io~1added-taints","value":"[\"nvidia.com/gpu:NoSchedule\"]"}]`
	if got := string(bothPatch(n, defaultLabels(n), taint)); got != want {
		t.Errorf("both:\n got %s\nwant %s", got, want)
	}
	// planned again from the result: nothing to write
	if p := bothPatch(applied(n, []byte(want)), defaultLabels(n), taint); p != nil {
		t.Errorf("again: %s", p)
	}
}

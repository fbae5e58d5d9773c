// Command clientgo is the client-go peer of tests/bench/label-taint: the
// concurrent node patcher a Go operator author would write. It does the work
// of `gpuctl label` (default labels) followed by `gpuctl taint` (default
// taint) on the GPU nodes: one LIST of all nodes, then JSON merge patches
// (labels) and strategic merge patches (taints) from a pool of -workers
// goroutines over client-go's HTTP/2 transport, with client-side throttling
// off. Nodes already in the wanted state are skipped, as gpuctl skips them.
//
// With -record it does exactly the work gpuctl does per node, as a Go
// operator author would who needs writes that `gpuctl cleanup` can undo:
// the same JSON patches (application/json-patch+json, body built as
// gpuctl's, see record.go) that test the labels or taints they were planned
// from (a 422 or 409 re-reads the node and plans again, up to 5 times, as
// gpuctl does) and record what they added in gpuctl's annotations
// (gpuctl.io/added-labels, gpuctl.io/added-taints). Each taint patch is
// planned from the node the label patch returned (no further request), so
// it sees the label record; gpuctl's second command lists the nodes again
// instead.
//
// client-go asks for Nodes in protobuf; -json makes it ask for JSON as gpuctl
// does (measured on 2000 GETs of a node: no difference in the API server's
// CPU that stood out of the noise).
//
// It prints one line on stdout:
//
//	clientgo nodes=N lists=L writes=W wall=S patch_wall=S writes_per_s=R workers=K record=0|1
//
// where patch_wall covers the patches only (used for the API server's write
// ceiling when run with many workers) and wall the whole run after loading
// the kubeconfig.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	taintKey    = "nvidia.com/gpu"
	taintValue  = "true"
	taintEffect = corev1.TaintEffectNoSchedule
	productKey  = "nvidia.com/gpu.product"
	// as gpuctl's MAX_CONFLICT_ROUNDS (src/kube/nodes.c)
	maxConflictRounds = 5
)

// counter counts the requests that reach the wire, by kind.
type counter struct {
	next          http.RoundTripper
	lists, writes atomic.Int64
	other         atomic.Int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.Method {
	case http.MethodGet:
		c.lists.Add(1)
	case http.MethodPatch, http.MethodPut, http.MethodPost:
		c.writes.Add(1)
	default:
		c.other.Add(1)
	}
	return c.next.RoundTrip(r)
}

// isGPUNode mirrors gpuctl's rule: nvidia.com/gpu capacity, NFD's PCI vendor
// 10de label, or nvidia.com/gpu.present=true.
func isGPUNode(n *corev1.Node) bool {
	if q, ok := n.Status.Capacity[corev1.ResourceName("nvidia.com/gpu")]; ok && !q.IsZero() {
		return true
	}
	return n.Labels["feature.node.kubernetes.io/pci-10de.present"] == "true" ||
		n.Labels["nvidia.com/gpu.present"] == "true"
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	workers := flag.Int("workers", 32, "concurrent patches in flight")
	jsonOnly := flag.Bool("json", false, "ask for JSON answers, as gpuctl does, instead of client-go's protobuf for Nodes")
	record := flag.Bool("record", false, "gpuctl's work per node: JSON patches testing what they were planned from and recording what they add (see record.go)")
	onePatch := flag.Bool("one-patch", false, "with -record: labels and taint of a node in one patch, as gpuctl label --taint sends them")
	flag.Parse()
	if *onePatch && !*record {
		fmt.Fprintln(os.Stderr, "clientgo: -one-patch needs -record")
		os.Exit(2)
	}
	if *workers < 1 {
		fmt.Fprintln(os.Stderr, "clientgo: -workers must be at least 1")
		os.Exit(2)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "clientgo: %v\n", err)
		os.Exit(1)
	}
	// No client-side rate limiting: a negative QPS leaves client-go's token
	// bucket out altogether.
	cfg.QPS = -1
	cfg.Burst = 0
	if *jsonOnly {
		// client-go asks for Nodes in protobuf, which costs the API server
		// less to encode than JSON; gpuctl (cJSON) takes JSON only
		cfg.ContentType = "application/json"
		cfg.AcceptContentTypes = "application/json"
	}
	cnt := &counter{}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		cnt.next = rt
		return cnt
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "clientgo: %v\n", err)
		os.Exit(1)
	}

	ctx := context.Background()
	start := time.Now()
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 500})
	if err != nil {
		fmt.Fprintf(os.Stderr, "clientgo: list nodes: %v\n", err)
		os.Exit(1)
	}
	nodes := list.Items
	for list.Continue != "" {
		list, err = cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 500, Continue: list.Continue})
		if err != nil {
			fmt.Fprintf(os.Stderr, "clientgo: list nodes: %v\n", err)
			os.Exit(1)
		}
		nodes = append(nodes, list.Items...)
	}

	type job struct {
		name  string
		pt    types.PatchType
		patch []byte
	}
	var labelJobs, taintJobs []job
	gpuNodes := []*corev1.Node{}
	gpu := 0
	for i := range nodes {
		n := &nodes[i]
		if !isGPUNode(n) {
			continue
		}
		gpu++
		gpuNodes = append(gpuNodes, n)
		if *onePatch {
			if p := bothPatch(n, defaultLabels(n), corev1.Taint{Key: taintKey, Value: taintValue, Effect: taintEffect}); p != nil {
				labelJobs = append(labelJobs, job{n.Name, types.JSONPatchType, p})
			}
			continue
		}
		if *record {
			if p := labelPatch(n, defaultLabels(n)); p != nil {
				labelJobs = append(labelJobs, job{n.Name, types.JSONPatchType, p})
			}
			continue
		}
		product := n.Labels[productKey]
		if n.Labels["accelerator"] != "nvidia" || n.Labels["gpu-type"] != product {
			p, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{
				"accelerator": "nvidia", "gpu-type": product}}})
			labelJobs = append(labelJobs, job{n.Name, types.MergePatchType, p})
		}
		has := false
		for _, t := range n.Spec.Taints {
			if t.Key == taintKey && t.Effect == taintEffect {
				has = true
			}
		}
		if !has {
			// Taints have no merge key: the patch carries the whole list
			// as listed. (No resourceVersion precondition: the label patch
			// before it moves the version on, and re-reading would cost a
			// GET per node; the benchmark owns these nodes.)
			taints := append(append([]corev1.Taint{}, n.Spec.Taints...),
				corev1.Taint{Key: taintKey, Value: taintValue, Effect: taintEffect})
			p, _ := json.Marshal(map[string]any{"spec": map[string]any{"taints": taints}})
			taintJobs = append(taintJobs, job{n.Name, types.StrategicMergePatchType, p})
		}
	}

	// -record: the nodes as the label patches left them (the PATCH answers),
	// planned from for the taints.
	var mu sync.Mutex
	latest := map[string]*corev1.Node{}
	opts := metav1.PatchOptions{}
	if *record {
		opts.FieldManager = "clientgo"
	}
	taint := corev1.Taint{Key: taintKey, Value: taintValue, Effect: taintEffect}
	labelPlan := func(n *corev1.Node) []byte { return labelPatch(n, defaultLabels(n)) }
	taintPlan := func(n *corev1.Node) []byte { return taintPatch(n, taint) }

	patchStart := time.Now()
	var failed atomic.Int64
	run := func(jobs []job, plan func(*corev1.Node) []byte) {
		ch := make(chan job)
		var wg sync.WaitGroup
		for w := 0; w < *workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range ch {
					var err error
					for round := 0; ; round++ {
						var got *corev1.Node
						got, err = cs.CoreV1().Nodes().Patch(ctx, j.name, j.pt, j.patch, opts)
						if err == nil {
							if *record {
								mu.Lock()
								latest[j.name] = got
								mu.Unlock()
							}
							break
						}
						// a test failed (422) or a conflict (409): the node
						// changed since it was read; read it and plan again
						if !*record || round+1 >= maxConflictRounds ||
							!(apierrors.IsInvalid(err) || apierrors.IsConflict(err)) {
							break
						}
						fresh, gerr := cs.CoreV1().Nodes().Get(ctx, j.name, metav1.GetOptions{})
						if gerr != nil {
							err = gerr
							break
						}
						again := plan(fresh)
						if again == nil {
							err = nil // someone made the same change meanwhile
							break
						}
						if string(again) == string(j.patch) && apierrors.IsInvalid(err) {
							break // refused for another reason than a change
						}
						j.patch = again
					}
					if err != nil {
						failed.Add(1)
						fmt.Fprintf(os.Stderr, "clientgo: node %s: %v\n", j.name, err)
					}
				}
			}()
		}
		for _, j := range jobs {
			ch <- j
		}
		close(ch)
		wg.Wait()
	}
	// -one-patch: one write per node, labels and taint (gpuctl label --taint)
	if *onePatch {
		labelPlan = func(n *corev1.Node) []byte { return bothPatch(n, defaultLabels(n), taint) }
	}
	// Labels first, then taints: the order of gpuctl label; gpuctl taint.
	run(labelJobs, labelPlan)
	if *record && !*onePatch {
		for _, n := range gpuNodes {
			if l := latest[n.Name]; l != nil {
				n = l
			}
			if p := taintPlan(n); p != nil {
				taintJobs = append(taintJobs, job{n.Name, types.JSONPatchType, p})
			}
		}
	}
	run(taintJobs, taintPlan)
	end := time.Now()

	wall := end.Sub(start).Seconds()
	pw := end.Sub(patchStart).Seconds()
	w := cnt.writes.Load()
	rate := 0.0
	if pw > 0 {
		rate = float64(w) / pw
	}
	rec := 0
	if *record {
		rec = 1
	}
	one := 0
	if *onePatch {
		one = 1
	}
	fmt.Printf("clientgo nodes=%d lists=%d writes=%d wall=%.3f patch_wall=%.3f writes_per_s=%.1f workers=%d record=%d one_patch=%d\n",
		gpu, cnt.lists.Load(), w, wall, pw, rate, *workers, rec, one)
	if failed.Load() > 0 {
		fmt.Fprintf(os.Stderr, "clientgo: %d patch(es) failed\n", failed.Load())
		os.Exit(1)
	}
}

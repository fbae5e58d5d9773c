package main

// mknodes makes the cluster's simulated nodes match the wanted baseline:
// gpu-node-1 … gpu-node-N plus cpu-node-1, all managed by kwok through the
// annotation kwok.x-k8s.io/node=fake. It creates missing nodes in parallel,
// deletes surplus gpu-node-K (K > N), optionally resets labels, annotations,
// taints and capacity of the existing ones to the baseline, and waits until
// every wanted node is Ready.

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	kwokAnnotation = "kwok.x-k8s.io/node"
	kwokValue      = "fake"
	productLabel   = "nvidia.com/gpu.product"
	gpuResource    = corev1.ResourceName("nvidia.com/gpu")
	h100           = "NVIDIA-H100-80GB-HBM3"
	a100           = "NVIDIA-A100-SXM4-80GB"
	maxGPUNodes    = 20000
)

var gpuNodeRE = regexp.MustCompile(`^gpu-node-([0-9]+)$`)

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "mknodes: "+format+"\n", a...)
}

// defaultIP gives each simulated node a distinct placeholder InternalIP in the
// loopback range (nothing listens there unless a test rig binds it, and no
// packet can leave the machine): gpu-node-K -> 127.10.K/256.K%256,
// cpu-node-1 -> 127.20.0.1.
func defaultIP(name string) string {
	if m := gpuNodeRE.FindStringSubmatch(name); m != nil {
		k, _ := strconv.Atoi(m[1])
		return fmt.Sprintf("127.10.%d.%d", k/256, k%256)
	}
	return "127.20.0.1"
}

// parseIPs reads "name=ip" pairs separated by commas, blanks or newlines;
// '#' starts a comment that runs to the end of its line.
func parseIPs(s string, into map[string]string) error {
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			name, ip, ok := strings.Cut(f, "=")
			if !ok || name == "" || ip == "" {
				return fmt.Errorf("bad node IP entry %q (want name=ip)", f)
			}
			into[name] = ip
		}
	}
	return nil
}

func baselineNode(name string, ips map[string]string) *corev1.Node {
	lbl := map[string]string{
		"kubernetes.io/hostname": name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
		"type":                   "kwok",
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("256Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
	}
	gpus := 0
	switch name {
	case "gpu-node-1":
		gpus = 1
		lbl[productLabel] = h100
		lbl["nvidia.com/gpu.count"] = "1"
		lbl["nvidia.com/gpu.present"] = "true"
	case "gpu-node-2":
		gpus = 4
		lbl[productLabel] = a100
		lbl["feature.node.kubernetes.io/pci-10de.present"] = "true"
	case "cpu-node-1":
	default: // gpu-node-3 … gpu-node-N
		gpus = 8
		lbl[productLabel] = h100
	}
	if gpus > 0 {
		res[gpuResource] = *resource.NewQuantity(int64(gpus), resource.DecimalSI)
	}
	ip := ips[name]
	if ip == "" {
		ip = defaultIP(name)
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      lbl,
			Annotations: map[string]string{kwokAnnotation: kwokValue},
		},
		Status: corev1.NodeStatus{
			Capacity:    res,
			Allocatable: res.DeepCopy(),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: ip},
				{Type: corev1.NodeHostName, Address: name},
			},
		},
	}
}

// keepAnnotation says which annotations set by the system (not by tests)
// survive a reset.
func keepAnnotation(k string) bool {
	return strings.HasPrefix(k, "kwok.x-k8s.io/") || strings.HasPrefix(k, "node.alpha.kubernetes.io/") ||
		strings.HasPrefix(k, "volumes.kubernetes.io/")
}

func isReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// parallel runs fn over items with the given number of workers and returns
// the first error.
func parallel[T any](items []T, workers int, fn func(T) error) error {
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		first error
		mu    sync.Mutex
	)
	if workers > len(items) {
		workers = len(items)
	}
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(items) {
					return
				}
				if err := fn(items[i]); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// retry retries fn on conflicts and transient server errors.
func retry(fn func() error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		err = fn()
		if err == nil || !(apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) ||
			apierrors.IsTooManyRequests(err) || apierrors.IsTimeout(err) || apierrors.IsInternalError(err)) {
			return err
		}
		time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
	}
	return err
}

func mknodes(args []string) int {
	fs := flag.NewFlagSet("mknodes", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "admin kubeconfig")
	count := fs.Int("gpu-nodes", 3, "number of GPU nodes (gpu-node-1 … gpu-node-N), 0…20000")
	ipList := fs.String("node-ips", os.Getenv("GPUCTL_NODE_IPS"), "InternalIP overrides: name=ip,name=ip,…")
	ipFile := fs.String("node-ips-file", os.Getenv("GPUCTL_NODE_IPS_FILE"), "file of name=ip lines (InternalIP overrides)")
	reset := fs.Bool("reset", false, "restore labels, annotations, taints and capacity of existing nodes to the baseline")
	workers := fs.Int("parallel", 64, "parallel API requests")
	wait := fs.Duration("wait", 5*time.Minute, "wait this long for all nodes to be Ready (0: don't wait)")
	_ = fs.Parse(args)

	if *count < 0 || *count > maxGPUNodes {
		logf("--gpu-nodes must be within 0…%d, got %d", maxGPUNodes, *count)
		return 2
	}
	ips := map[string]string{}
	if *ipFile != "" {
		b, err := os.ReadFile(*ipFile)
		if err != nil {
			logf("%v", err)
			return 2
		}
		if err := parseIPs(string(b), ips); err != nil {
			logf("%s: %v", *ipFile, err)
			return 2
		}
	}
	if err := parseIPs(*ipList, ips); err != nil {
		logf("%v", err)
		return 2
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		logf("kubeconfig: %v", err)
		return 2
	}
	cfg.QPS, cfg.Burst = 2000, 4000
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		logf("%v", err)
		return 1
	}
	ctx := context.Background()
	start := time.Now()

	wanted := map[string]bool{"cpu-node-1": true}
	for k := 1; k <= *count; k++ {
		wanted[fmt.Sprintf("gpu-node-%d", k)] = true
	}

	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		logf("list nodes: %v", err)
		return 1
	}
	existing := map[string]*corev1.Node{}
	var surplus []string
	for i := range list.Items {
		n := &list.Items[i]
		existing[n.Name] = n
		// Surplus: gpu-node-K beyond the wanted count. Other nodes (ones a
		// test or the SSH rig made) are never touched.
		if !wanted[n.Name] && n.Annotations[kwokAnnotation] == kwokValue && gpuNodeRE.MatchString(n.Name) {
			surplus = append(surplus, n.Name)
		}
	}
	var missing, present []string
	for name := range wanted {
		if existing[name] == nil {
			missing = append(missing, name)
		} else {
			present = append(present, name)
		}
	}
	sort.Strings(missing)

	// Delete surplus GPU nodes. Their leases are owned by the node and go
	// with it; pods bound to them are cleaned up by the pod GC controller.
	if len(surplus) > 0 {
		err := parallel(surplus, *workers, func(name string) error {
			err := retry(func() error { return cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}) })
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		})
		if err != nil {
			logf("delete nodes: %v", err)
			return 1
		}
		logf("deleted %d surplus GPU nodes", len(surplus))
	}

	// Create the missing ones. Nodes keep their status on create, as a
	// kubelet's registration does.
	if len(missing) > 0 {
		t := time.Now()
		err := parallel(missing, *workers, func(name string) error {
			err := retry(func() error {
				_, err := cs.CoreV1().Nodes().Create(ctx, baselineNode(name, ips), metav1.CreateOptions{})
				return err
			})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
		if err != nil {
			logf("create nodes: %v", err)
			return 1
		}
		logf("created %d nodes in %.1fs", len(missing), time.Since(t).Seconds())
	}

	// Bring existing nodes back to the baseline: their InternalIP whenever
	// an override names them (a node's address is otherwise left as it is,
	// so a plain run keeps addresses an earlier run set); with --reset also
	// labels, annotations, taints, unschedulable and capacity (what tests
	// mutate).
	var fixed atomic.Int64
	err = parallel(present, *workers, func(name string) error {
		want := baselineNode(name, ips)
		cur := existing[name]
		if *reset {
			annos := map[string]string{}
			for k, v := range cur.Annotations {
				if keepAnnotation(k) {
					annos[k] = v
				}
			}
			maps.Copy(annos, want.Annotations)
			if !maps.Equal(cur.Labels, want.Labels) || !maps.Equal(cur.Annotations, annos) ||
				len(cur.Spec.Taints) > 0 || cur.Spec.Unschedulable {
				err := retry(func() error {
					n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
					if err != nil {
						return err
					}
					n.Labels = want.Labels
					n.Annotations = annos
					n.Spec.Taints = nil
					n.Spec.Unschedulable = false
					_, err = cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
					return err
				})
				if err != nil {
					return fmt.Errorf("reset %s: %w", name, err)
				}
				fixed.Add(1)
			}
		}
		_, override := ips[name]
		statusOK := !override || internalIP(cur) == internalIP(want)
		if *reset {
			statusOK = statusOK && equality.Semantic.DeepEqual(cur.Status.Capacity, want.Status.Capacity) &&
				equality.Semantic.DeepEqual(cur.Status.Allocatable, want.Status.Allocatable)
		}
		if !statusOK {
			err := retry(func() error {
				n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if *reset {
					n.Status.Capacity = want.Status.Capacity
					n.Status.Allocatable = want.Status.Allocatable
				}
				if override {
					n.Status.Addresses = want.Status.Addresses
				}
				_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				return fmt.Errorf("reset status of %s: %w", name, err)
			}
			fixed.Add(1)
		}
		return nil
	})
	if err != nil {
		logf("%v", err)
		return 1
	}
	if n := fixed.Load(); n > 0 {
		logf("restored %d node objects to the baseline", n)
	}

	if *wait <= 0 {
		return 0
	}
	if err := waitNodes(ctx, cs, wanted, surplus, *wait); err != nil {
		logf("%v", err)
		return 1
	}
	logf("%d kwok nodes Ready (%d GPU) in %.1fs", len(wanted), *count, time.Since(start).Seconds())
	return 0
}

// waitNodes watches the kwok nodes until every wanted node is Ready and every
// deleted one is gone.
func waitNodes(ctx context.Context, cs kubernetes.Interface, wanted map[string]bool, gone []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sel := labels.SelectorFromSet(labels.Set{"type": "kwok"}).String()
	lw := cache.NewFilteredListWatchFromClient(cs.CoreV1().RESTClient(), "nodes", "", func(o *metav1.ListOptions) {
		o.LabelSelector = sel
		o.FieldSelector = fields.Everything().String()
	})
	store, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.Node{},
		Handler:       cache.ResourceEventHandlerFuncs{},
	})
	go ctrl.RunWithContext(ctx)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	for {
		select {
		case <-ctx.Done():
			ready, notReady, left := countReady(store, wanted, gone)
			return fmt.Errorf("timed out after %s waiting for nodes: %d Ready, not Ready: %v, still present: %v",
				timeout, ready, head(notReady, 10), head(left, 10))
		case <-tick.C:
		}
		if !ctrl.HasSynced() {
			continue
		}
		ready, notReady, left := countReady(store, wanted, gone)
		if len(notReady) == 0 && len(left) == 0 {
			return nil
		}
		if time.Since(lastLog) > 5*time.Second {
			logf("waiting: %d/%d nodes Ready, %d deleted nodes still present", ready, len(wanted), len(left))
			lastLog = time.Now()
		}
	}
}

func countReady(store cache.Store, wanted map[string]bool, gone []string) (int, []string, []string) {
	ready := 0
	var notReady, left []string
	for name := range wanted {
		o, ok, _ := store.GetByKey(name)
		if ok && isReady(o.(*corev1.Node)) {
			ready++
		} else {
			notReady = append(notReady, name)
		}
	}
	for _, name := range gone {
		if _, ok, _ := store.GetByKey(name); ok {
			left = append(left, name)
		}
	}
	sort.Strings(notReady)
	return ready, notReady, left
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

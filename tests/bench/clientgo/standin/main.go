// Command standin is a STAND-IN for the NVIDIA device plugin (and for the
// labels gpu-feature-discovery writes) on the local cluster's kwok nodes,
// where the plugin's pods are "Running" but nothing advertises GPUs. It is
// NOT the plugin: it plays the plugin's answer as seen from the API server,
// for tests/bench/slice (the Go peer of PluginStandIn in
// tests/e2e/test_slice.py). Both ways the benchmark compares face it alike.
//
// Three informers (one watch each): the nodes, the plugin's ConfigMap and
// the plugin's pods. Like the real plugin, it answers in two cases only:
//
//   - a new plugin pod Running on a node (the DaemonSet replaced it after a
//     delete or a rollout restart): the init container picks the node's
//     configuration from the ConfigMap at start;
//   - a change of the node's nvidia.com/device-plugin.config label: the
//     config-manager sidecar copies the configuration the label names and
//     SIGHUPs the plugin.
//
// A change of the ConfigMap alone changes nothing, as with the real plugin
// (its config-manager follows the label, not the files). After -delay (the
// plugin re-registering with its kubelet and the kubelet's status update;
// a second event for the node restarts the clock) the node is patched as
// the kubelet and GFD would: status capacity and allocatable of
// nvidia.com/gpu (or nvidia.com/gpu.shared with renameByDefault) = physical
// GPUs x replicas of the configuration in use, and the labels
// nvidia.com/gpu.replicas and nvidia.com/gpu.sharing-strategy. Physical
// GPUs: the nvidia.com/gpu.count label, else the capacity at first sight
// divided by the nvidia.com/gpu.replicas label (1 without it).
//
// Output: "standin: ready nodes=N" on stderr once the informers have
// synced, then one line per node answered:
//
//	standin: answer NODE count=C replicas=R strategy=S writes=W why=pod|label|start t=UNIX
//
// where t is the time its last patch returned (Unix seconds, microseconds).
//
// and on SIGTERM/SIGINT a last line "standin: done writes=W".
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

const (
	configLabel   = "nvidia.com/device-plugin.config"
	replicasLabel = "nvidia.com/gpu.replicas"
	strategyLabel = "nvidia.com/gpu.sharing-strategy"
	countLabel    = "nvidia.com/gpu.count"
	gpuRes        = "nvidia.com/gpu"
	sharedRes     = "nvidia.com/gpu.shared"
)

// pluginConfig is the part of the plugin's config file (api/config/v1) that
// decides what is advertised.
type pluginConfig struct {
	Sharing struct {
		TimeSlicing *sharing `json:"timeSlicing"`
		MPS         *sharing `json:"mps"`
	} `json:"sharing"`
}

type sharing struct {
	RenameByDefault bool `json:"renameByDefault"`
	Resources       []struct {
		Name     string `json:"name"`
		Replicas int    `json:"replicas"`
	} `json:"resources"`
}

type standIn struct {
	cs         kubernetes.Interface
	nodes      listersv1.NodeLister
	cms        listersv1.ConfigMapLister
	ns, cm     string
	defaultKey string
	delay      time.Duration

	mu       sync.Mutex
	physical map[string]int64       // node -> physical GPUs
	podUID   map[string]types.UID   // node -> the plugin pod answered last
	timers   map[string]*time.Timer // node -> pending answer
	writes   atomic.Int64
	ready    atomic.Bool
}

func log(format string, a ...any) { fmt.Fprintf(os.Stderr, "standin: "+format+"\n", a...) }

// learn records a node's physical GPUs the first time it is seen.
func (s *standIn) learn(n *corev1.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.physical[n.Name]; ok {
		return
	}
	if v, err := strconv.ParseInt(n.Labels[countLabel], 10, 64); err == nil && v > 0 {
		s.physical[n.Name] = v
		return
	}
	have := n.Status.Capacity[corev1.ResourceName(gpuRes)]
	c := have.Value()
	if c == 0 {
		q := n.Status.Capacity[corev1.ResourceName(sharedRes)]
		c = q.Value()
	}
	if c == 0 {
		return // not a GPU node
	}
	r, err := strconv.ParseInt(n.Labels[replicasLabel], 10, 64)
	if err != nil || r < 1 {
		r = 1
	}
	if c/r < 1 {
		s.physical[n.Name] = 1
	} else {
		s.physical[n.Name] = c / r
	}
}

// schedule answers for the node after the delay; a pending answer starts over.
func (s *standIn) schedule(node, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.physical[node]; !ok {
		return
	}
	if t := s.timers[node]; t != nil {
		t.Stop()
	}
	s.timers[node] = time.AfterFunc(s.delay, func() { s.answer(node, why) })
}

func (s *standIn) answer(node, why string) {
	s.mu.Lock()
	phys := s.physical[node]
	delete(s.timers, node)
	s.mu.Unlock()
	n, err := s.nodes.Get(node)
	if err != nil {
		log("node %s: %v", node, err)
		return
	}
	key := n.Labels[configLabel]
	if key == "" {
		key = s.defaultKey
	}
	var data map[string]string
	if cm, err := s.cms.ConfigMaps(s.ns).Get(s.cm); err == nil {
		data = cm.Data
	}
	text, ok := data[key]
	if !ok {
		text, ok = data[s.defaultKey] // the config-manager's fallback: the default
	}
	if !ok {
		log("node %s: no configuration %q (nor %q) in configmap %s/%s", node, key, s.defaultKey, s.ns, s.cm)
		return
	}
	var cfg pluginConfig
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		log("node %s: configuration %q: %v", node, key, err)
		return
	}
	strategy, replicas, rename := "none", int64(1), false
	sh := cfg.Sharing.TimeSlicing
	if cfg.Sharing.MPS != nil {
		strategy, sh = "mps", cfg.Sharing.MPS
	} else if sh != nil {
		strategy = "time-slicing"
	}
	if sh != nil {
		rename = sh.RenameByDefault
		for _, r := range sh.Resources {
			if r.Name == gpuRes && r.Replicas >= 1 {
				replicas = int64(r.Replicas)
			}
		}
	}
	name, other := gpuRes, sharedRes
	if rename && strategy != "none" {
		name, other = sharedRes, gpuRes
	}
	count := phys * replicas
	want := strconv.FormatInt(count, 10)
	ctx := context.Background()
	w := 0
	capNow := n.Status.Capacity[corev1.ResourceName(name)]
	allocNow := n.Status.Allocatable[corev1.ResourceName(name)]
	_, hasOther := n.Status.Capacity[corev1.ResourceName(other)]
	if capNow.String() != want || allocNow.String() != want || hasOther {
		res := map[string]any{name: want, other: nil}
		p, _ := json.Marshal(map[string]any{"status": map[string]any{"capacity": res, "allocatable": res}})
		if _, err := s.cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, p, metav1.PatchOptions{},
			"status"); err != nil {
			log("node %s: patch status: %v", node, err)
			return
		}
		w++
	}
	rs := strconv.FormatInt(replicas, 10)
	if n.Labels[replicasLabel] != rs || n.Labels[strategyLabel] != strategy {
		p, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{
			replicasLabel: rs, strategyLabel: strategy}}})
		if _, err := s.cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, p, metav1.PatchOptions{}); err != nil {
			log("node %s: patch labels: %v", node, err)
			return
		}
		w++
	}
	s.writes.Add(int64(w))
	t := time.Now()
	log("answer %s count=%d replicas=%d strategy=%s writes=%d why=%s t=%d.%06d", node, count, replicas, strategy, w,
		why, t.Unix(), t.Nanosecond()/1000)
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	ns := flag.String("namespace", "nvidia-device-plugin", "the device plugin's namespace")
	cmName := flag.String("configmap", "nvidia-device-plugin-configs", "the device plugin's configurations")
	def := flag.String("default", "any", "the configuration of nodes without a label (DEFAULT_CONFIG)")
	pods := flag.String("pods", "app.kubernetes.io/name=nvidia-device-plugin", "the plugin's pods (label selector)")
	delay := flag.Duration("delay", 2*time.Second, "from a restart or label change to the node's new capacity")
	flag.Parse()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log("%v", err)
		os.Exit(1)
	}
	cfg.QPS = -1 // no client-side throttling: the answers must not queue here
	cfg.Burst = 0
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log("%v", err)
		os.Exit(1)
	}
	all := informers.NewSharedInformerFactory(cs, 0)
	inNS := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(*ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=" + *cmName }))
	podF := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(*ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = *pods }))
	s := &standIn{cs: cs, ns: *ns, cm: *cmName, defaultKey: *def, delay: *delay,
		physical: map[string]int64{}, podUID: map[string]types.UID{}, timers: map[string]*time.Timer{}}
	ni := all.Core().V1().Nodes()
	s.nodes = ni.Lister()
	ci := inNS.Core().V1().ConfigMaps()
	s.cms = ci.Lister()
	pi := podF.Core().V1().Pods()

	ni.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { s.learn(o.(*corev1.Node)) },
		UpdateFunc: func(o, n any) {
			on, nn := o.(*corev1.Node), n.(*corev1.Node)
			s.learn(nn)
			if s.ready.Load() && on.Labels[configLabel] != nn.Labels[configLabel] {
				s.schedule(nn.Name, "label")
			}
		},
	})
	podEvent := func(o any) {
		p, ok := o.(*corev1.Pod)
		if !ok || p.Spec.NodeName == "" || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			return
		}
		s.mu.Lock()
		seen := s.podUID[p.Spec.NodeName]
		s.podUID[p.Spec.NodeName] = p.UID
		s.mu.Unlock()
		if seen != p.UID && s.ready.Load() {
			s.schedule(p.Spec.NodeName, "pod")
		}
	}
	pi.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    podEvent,
		UpdateFunc: func(_, n any) { podEvent(n) },
	})
	ci.Informer() // registered before Start

	stop := make(chan struct{})
	all.Start(stop)
	inNS.Start(stop)
	podF.Start(stop)
	all.WaitForCacheSync(stop)
	inNS.WaitForCacheSync(stop)
	podF.WaitForCacheSync(stop)
	// The pods running now were answered before the stand-in started; bring
	// every node in line with the configuration in use once.
	s.ready.Store(true)
	s.mu.Lock()
	names := make([]string, 0, len(s.physical))
	for n := range s.physical {
		names = append(names, n)
	}
	s.mu.Unlock()
	for _, n := range names {
		s.answer(n, "start")
	}
	log("ready nodes=%d delay=%s", len(names), s.delay)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	close(stop)
	log("done writes=%d", s.writes.Load())
}

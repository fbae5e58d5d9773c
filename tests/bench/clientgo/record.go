package main

// The -record mode's patch bodies: what gpuctl label / gpuctl taint send for
// the default labels and taint (src/kube/plan.c, label_plan_node and
// taint_plan_node), byte for byte where the input is the same. A JSON patch
// (application/json-patch+json) that
//   - tests what it was planned from: the node's labels as read (or, for a
//     taint, its taints as read, or its whole spec when it has none), so a
//     concurrent change fails it with 422 instead of being lost; status
//     heartbeats touch neither, so unlike a resourceVersion precondition they
//     cause no retries;
//   - adds the labels (or writes the whole taint list, new taints first as
//     kubectl orders them);
//   - records what it added in gpuctl's annotations (include/gpuctl/owned.h):
//     gpuctl.io/added-labels (a JSON list of keys), gpuctl.io/overwritten-labels
//     (a JSON object key: value before, for a label a person had set) and
//     gpuctl.io/added-taints (a JSON list of "key:effect"), testing an
//     annotation that exists first, so `gpuctl cleanup` can undo exactly
//     these writes.
// Checked against the server once: on 50 kwok nodes, all 100 PATCH requests
// of `clientgo -record` (path, content type, body) were byte for byte those
// of `gpuctl label; gpuctl taint`, captured through a logging TLS proxy,
// the fieldManager query parameter aside (gpuctl / clientgo).

import (
	"bytes"
	"encoding/json"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
)

const (
	addedLabelsKey       = "gpuctl.io/added-labels"
	overwrittenLabelsKey = "gpuctl.io/overwritten-labels"
	addedTaintsKey       = "gpuctl.io/added-taints"
)

// jsonOp is one RFC 6902 operation, its members in gpuctl's order.
type jsonOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// kv is one label, or one member of an ordered JSON object.
type kv struct{ key, value string }

// ordered is a JSON object of strings that keeps its members' order, as
// cJSON does (gpuctl writes the record in the order it built it).
type ordered []kv

func (o ordered) get(k string) (string, bool) {
	for _, m := range o {
		if m.key == k {
			return m.value, true
		}
	}
	return "", false
}

func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(marshal(m.key))
		b.WriteByte(':')
		b.Write(marshal(m.value))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is compact JSON without Go's HTML escaping (cJSON has none).
func marshal(v any) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		panic(err) // only strings, maps of strings and API types here
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// pointerEscape escapes a JSON pointer token (RFC 6901).
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// readList is the record under key as a list of strings: a missing or
// unreadable one is empty, non-strings and repeats are dropped.
func readList(ann map[string]string, key string) []string {
	var raw []any
	out := []string{}
	if s, ok := ann[key]; ok && json.Unmarshal([]byte(s), &raw) == nil {
		for _, it := range raw {
			if s, ok := it.(string); ok && !contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// readObject is the record under key as an object of strings, in order.
func readObject(ann map[string]string, key string) ordered {
	out := ordered{}
	s, ok := ann[key]
	if !ok {
		return out
	}
	d := json.NewDecoder(strings.NewReader(s))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return out
	}
	var got ordered
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return out
		}
		k := t.(string)
		var v any
		if d.Decode(&v) != nil {
			return out
		}
		if s, ok := v.(string); ok {
			if _, dup := got.get(k); !dup {
				got = append(got, kv{k, s})
			}
		}
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') {
		return out
	}
	if got == nil {
		return out
	}
	return got
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// recordOps appends the operations that set the annotations keys[i] to
// values[i] (compact JSON, "" removes it), as gpuctl's record_patch: an
// annotation that exists is tested first; a node without annotations gets
// the whole map in one operation.
func recordOps(ops []jsonOp, ann map[string]string, keys, values []string) []jsonOp {
	var whole ordered
	for i, k := range keys {
		v := values[i]
		cur, has := ann[k]
		if (v == "" && !has) || (v != "" && has && v == cur) {
			continue
		}
		if len(ann) == 0 {
			whole = append(whole, kv{k, v})
			continue
		}
		path := "/metadata/annotations/" + pointerEscape(k)
		if has {
			ops = append(ops, jsonOp{Op: "test", Path: path, Value: cur})
		}
		if v != "" {
			ops = append(ops, jsonOp{Op: "add", Path: path, Value: v})
		} else {
			ops = append(ops, jsonOp{Op: "remove", Path: path})
		}
	}
	if whole != nil {
		ops = append(ops, jsonOp{Op: "add", Path: "/metadata/annotations", Value: whole})
	}
	return ops
}

func listJSON(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return string(marshal(l))
}

func objectJSON(o ordered) string {
	if len(o) == 0 {
		return ""
	}
	return string(marshal(o))
}

// defaultLabels are gpuctl label's defaults for n: accelerator=nvidia and
// gpu-type=<GPU product without GFD's -SHARED>, the latter left out when
// the node has no product.
func defaultLabels(n *corev1.Node) []kv {
	want := []kv{{"accelerator", "nvidia"}}
	if p := n.Labels[productKey]; p != "" {
		if len(p) > len("-SHARED") && strings.HasSuffix(p, "-SHARED") {
			p = strings.TrimSuffix(p, "-SHARED")
		}
		want = append(want, kv{"gpu-type", p})
	}
	return want
}

// labelPatch is gpuctl label --overwrite's patch setting want on n, or nil
// when n has them all. (Without --overwrite gpuctl refuses a label that has
// another value; the benchmark's nodes never have one.)
func labelPatch(n *corev1.Node, want []kv) []byte {
	added := readList(n.Annotations, addedLabelsKey)
	over := readObject(n.Annotations, overwrittenLabelsKey)
	var set []kv
	for _, w := range want {
		cur, has := n.Labels[w.key]
		if has && cur == w.value {
			continue
		}
		// what gpuctl adds is recorded; a value a person set is never
		// recorded as gpuctl's: its old value is kept so cleanup restores it
		if !has {
			if !contains(added, w.key) {
				added = append(added, w.key)
			}
		} else if _, o := over.get(w.key); !contains(added, w.key) && !o {
			over = append(over, kv{w.key, cur})
		}
		set = append(set, w)
	}
	if len(set) == 0 {
		return nil
	}
	var ops []jsonOp
	if n.Labels != nil {
		ops = append(ops, jsonOp{Op: "test", Path: "/metadata/labels", Value: n.Labels})
		for _, s := range set {
			ops = append(ops, jsonOp{Op: "add", Path: "/metadata/labels/" + pointerEscape(s.key), Value: s.value})
		}
	} else {
		ops = append(ops, jsonOp{Op: "add", Path: "/metadata/labels", Value: ordered(set)})
	}
	ops = recordOps(ops, n.Annotations, []string{addedLabelsKey, overwrittenLabelsKey},
		[]string{listJSON(added), objectJSON(over)})
	return marshal(ops)
}

// taintPatch is gpuctl taint --overwrite's patch adding t to n, or nil when
// n has it. kubectl's order: the taint added first, then the old ones it
// does not replace.
func taintPatch(n *corev1.Node, t corev1.Taint) []byte {
	added := readList(n.Annotations, addedTaintsKey)
	old := n.Spec.Taints
	var cur *corev1.Taint
	for i := range old {
		if old[i].Key == t.Key && old[i].Effect == t.Effect {
			cur = &old[i]
		}
	}
	if cur != nil && cur.Value == t.Value {
		return nil
	}
	if cur == nil {
		// a new taint is gpuctl's; one a person set keeps being theirs
		if ke := t.Key + ":" + string(t.Effect); !contains(added, ke) {
			added = append(added, ke)
		}
	}
	after := []corev1.Taint{{Key: t.Key, Value: t.Value, Effect: t.Effect}}
	for _, o := range old {
		if !(o.Key == t.Key && o.Effect == t.Effect) {
			after = append(after, o)
		}
	}
	var ops []jsonOp
	if old != nil {
		ops = append(ops, jsonOp{Op: "test", Path: "/spec/taints", Value: old},
			jsonOp{Op: "replace", Path: "/spec/taints", Value: after})
	} else {
		ops = append(ops, jsonOp{Op: "test", Path: "/spec", Value: n.Spec},
			jsonOp{Op: "add", Path: "/spec/taints", Value: after})
	}
	ops = recordOps(ops, n.Annotations, []string{addedTaintsKey}, []string{listJSON(added)})
	return marshal(ops)
}

// bothPatch is gpuctl label --taint's patch (label_taint_plan_node): one
// write per node, the label operations, then the taint operations planned
// from n as the label patch leaves it (its record annotations, the
// annotations object it may create); nil when n has both.
func bothPatch(n *corev1.Node, want []kv, t corev1.Taint) []byte {
	lp := labelPatch(n, want)
	after := n
	if lp != nil {
		after = applied(n, lp)
	}
	tp := taintPatch(after, t)
	switch {
	case lp == nil:
		return tp
	case tp == nil:
		return lp
	}
	both := append([]byte{}, lp[:len(lp)-1]...)
	both = append(both, ',')
	return append(both, tp[1:]...)
}

// applied is n with the JSON patch p applied, as the server would.
func applied(n *corev1.Node, p []byte) *corev1.Node {
	patch, err := jsonpatch.DecodePatch(p)
	if err != nil {
		panic(err) // our own patch
	}
	doc, err := patch.Apply(marshal(n))
	if err != nil {
		panic(err) // planned from n: it applies
	}
	var out corev1.Node
	if err := json.Unmarshal(doc, &out); err != nil {
		panic(err)
	}
	return &out
}

package kube

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// crdKinds are kinds served only once a CustomResourceDefinition is
// installed, which the test control plane does not do. Objects of these
// kinds are skipped with the reason given; any other kind the API server
// does not know fails the test.
var crdKinds = map[schema.GroupKind]string{
	{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}: "Prometheus operator CRD, not installed in the test control plane",
	{Group: "monitoring.coreos.com", Kind: "PodMonitor"}:     "Prometheus operator CRD, not installed in the test control plane",
}

// manifestObject is one object of a file under deploy/kubernetes, as
// kubectl would send it.
type manifestObject struct {
	file string // relative to deploy/kubernetes
	obj  *unstructured.Unstructured
	// namespace is the kustomization's namespace, which kustomize sets on
	// namespaced objects only.
	namespace string
}

func (m manifestObject) String() string {
	return fmt.Sprintf("%s: %s %s", m.file, m.obj.GetKind(), m.obj.GetName())
}

// readManifest decodes every non-empty YAML document of the file name under
// deploy/kubernetes. Duplicate keys are an error, as they are for the API
// server's strict field validation (which cannot see them once the
// document is a map).
func readManifest(t *testing.T, name string) []manifestObject {
	t.Helper()
	data, err := os.ReadFile(manifest(name))
	if err != nil {
		t.Fatal(err)
	}
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []manifestObject
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", name, i, err)
		}
		obj := map[string]any{}
		if err := yaml.UnmarshalStrict(doc, &obj); err != nil {
			t.Errorf("%s: document %d: %v", name, i, err)
			continue
		}
		if len(obj) == 0 {
			continue // comments only
		}
		out = append(out, manifestObject{file: name, obj: &unstructured.Unstructured{Object: obj}})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no objects", name)
	}
	return out
}

// kustomization is the part of kustomization.yaml the test carries out.
// Decoding rejects any other field, so a kustomization that starts using
// one (patches, configMapGenerator, ...) fails until the test emulates it.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
		IncludeTemplates bool              `json:"includeTemplates"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// kustomize reads dir's kustomization.yaml and returns its resources'
// objects as `kubectl apply -k` would send them: with its labels on metadata.labels and its images set on the
// pod templates' containers. Its namespace is set once the object's kind
// is known to be namespaced.
func kustomize(t *testing.T, dir string) []manifestObject {
	t.Helper()
	data, err := os.ReadFile(manifest(filepath.Join(dir, "kustomization.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v (the test emulates namespace, labels, resources and images only)", dir, err)
	}
	var out []manifestObject
	for _, r := range k.Resources {
		for _, m := range readManifest(t, filepath.Join(dir, r)) {
			m.namespace = k.Namespace
			for _, l := range k.Labels {
				if l.IncludeSelectors || l.IncludeTemplates {
					t.Fatalf("%s/kustomization.yaml: labels with includeSelectors or includeTemplates are not emulated", dir)
				}
				labels := m.obj.GetLabels()
				if labels == nil {
					labels = map[string]string{}
				}
				for key, v := range l.Pairs {
					labels[key] = v
				}
				m.obj.SetLabels(labels)
			}
			for _, field := range []string{"containers", "initContainers"} {
				path := []string{"spec", "template", "spec", field}
				cs, ok, err := unstructured.NestedSlice(m.obj.Object, path...)
				if err != nil {
					t.Fatalf("%s: %v", m, err)
				}
				if !ok {
					continue
				}
				for _, c := range cs {
					c, _ := c.(map[string]any)
					image, _ := c["image"].(string)
					for _, im := range k.Images {
						if imageName(image) != im.Name {
							continue
						}
						name, tag := imageName(image), strings.TrimPrefix(image, imageName(image))
						if im.NewName != "" {
							name = im.NewName
						}
						if im.NewTag != "" {
							tag = ":" + im.NewTag
						}
						c["image"] = name + tag
					}
				}
				if err := unstructured.SetNestedSlice(m.obj.Object, cs, path...); err != nil {
					t.Fatalf("%s: %v", m, err)
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// imageName is image without its tag or digest.
func imageName(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// warningRecorder keeps the warnings the API server sends (deprecated
// APIs, fields it ignores) until taken.
type warningRecorder struct {
	mu   sync.Mutex
	list []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// take returns the warnings recorded since the last call.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// TestManifestsServerDryRun sends every object users apply from
// deploy/kubernetes (the files next to augur/, and augur/ through its
// kustomization) to the API server with server-side dry-run and strict
// field validation: unknown or duplicate fields, wrong types, invalid
// values, missing required fields and API server warnings fail, naming
// file, kind and name. Namespaces are created for real first, since a
// dry-run object needs its namespace to exist.
func TestManifestsServerDryRun(t *testing.T) {
	c := needCluster(t)
	ctx := t.Context()

	files, err := filepath.Glob(manifest("*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no manifests in %s", manifest(""))
	}
	var objs []manifestObject
	for _, f := range files {
		objs = append(objs, readManifest(t, filepath.Base(f))...)
	}
	objs = append(objs, kustomize(t, "augur")...)

	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	warnings := &warningRecorder{}
	cfg := rest.CopyConfig(c.Config)
	cfg.WarningHandler = warnings
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dryRun := []string{metav1.DryRunAll}

	// Map every object to its client, in the namespace kubectl or
	// kustomize would put it. Objects of a CRD kind get a skip reason
	// instead; an object the API server cannot take fails here.
	clients := make([]dynamic.ResourceInterface, len(objs))
	skips := make([]string, len(objs))
	for i, m := range objs {
		gvk := m.obj.GroupVersionKind()
		if gvk.Kind == "" || gvk.Version == "" || m.obj.GetName() == "" {
			t.Errorf("%s: object without apiVersion, kind or metadata.name", m)
			continue
		}
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			if reason, crd := crdKinds[gvk.GroupKind()]; crd && meta.IsNoMatchError(err) {
				skips[i] = fmt.Sprintf("%s: %s: %s", m, gvk, reason)
				continue
			}
			t.Errorf("%s: %s is not served by the API server: %v", m, gvk, err)
			continue
		}
		if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
			if ns := m.obj.GetNamespace(); ns != "" {
				t.Errorf("%s: cluster-scoped %s has metadata.namespace %q", m, gvk.Kind, ns)
				continue
			}
			clients[i] = dyn.Resource(mapping.Resource)
			continue
		}
		switch {
		case m.namespace != "":
			m.obj.SetNamespace(m.namespace)
		case m.obj.GetNamespace() == "":
			m.obj.SetNamespace("default") // kubectl's namespace without -n
		}
		clients[i] = dyn.Resource(mapping.Resource).Namespace(m.obj.GetNamespace())
	}

	// Namespaces: the manifests' own for real, then any other namespace an
	// object is in (a workload namespace such as "payment", which exists
	// before augur is installed) as an empty one.
	namespaces := map[string]bool{}
	for i, m := range objs {
		if clients[i] == nil || m.obj.GroupVersionKind() != (schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}) {
			continue
		}
		_, err := clients[i].Create(ctx, m.obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Errorf("%s: %v", m, err)
		}
		namespaces[m.obj.GetName()] = true
	}
	for i, m := range objs {
		ns := m.obj.GetNamespace()
		if clients[i] == nil || ns == "" || namespaces[ns] {
			continue
		}
		namespaces[ns] = true
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("Namespace")
		u.SetName(ns)
		_, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, u, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create namespace %s for %s: %v", ns, m, err)
		}
	}

	for i, m := range objs {
		t.Run(strings.NewReplacer("/", "_", " ", "_").Replace(m.String()), func(t *testing.T) {
			if skips[i] != "" {
				t.Skip(skips[i])
			}
			ri := clients[i]
			if ri == nil {
				return // failed above
			}
			warnings.take()
			_, err := ri.Create(ctx, m.obj, metav1.CreateOptions{DryRun: dryRun, FieldValidation: metav1.FieldValidationStrict})
			if apierrors.IsAlreadyExists(err) {
				// Created by this test (a namespace) or by another test
				// of the package: validate it as an update of the
				// existing object, as `kubectl apply --server-side` does.
				body, merr := m.obj.MarshalJSON()
				if merr != nil {
					t.Fatal(merr)
				}
				_, err = ri.Patch(ctx, m.obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
					DryRun: dryRun, FieldValidation: metav1.FieldValidationStrict,
					FieldManager: "manifest-dry-run", Force: new(true),
				})
			}
			if err != nil {
				t.Errorf("%s (namespace %q): %v", m, m.obj.GetNamespace(), err)
			}
			for _, w := range warnings.take() {
				t.Errorf("%s (namespace %q): API server warning: %s", m, m.obj.GetNamespace(), w)
			}
		})
	}
}

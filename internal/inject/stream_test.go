package inject_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/zerohop/zerohop/internal/inject"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: app
          image: nginx
`

const configMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: zerohop
data:
  zerohop.yaml: |
    version: 1
    cache:
      size: 64MiB
`

// TestStreamErrorLines checks that a mistake is reported on the line of
// the stream it is on, whichever document holds it.
func TestStreamErrorLines(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		line     int
		want     string
	}{
		{"unknown field, second document", configMap + "---\n" + strings.Replace(deployment, "image: nginx", "image: nginx\n          imagePolicy: Always", 1),
			10 + 13, `(Deployment web): unknown field "imagePolicy"`},
		{"wrong type", strings.Replace(deployment, "image: nginx", "image: nginx\n          ports: [{containerPort: eighty}]", 1),
			13, "spec.template.spec.containers.ports.containerPort: want int32, not string"},
		{"syntax", "---\n" + deployment + "---\nkind: Pod\nspec: [\n", 16, "did not find expected node content"},
		{"bad zerohop.yaml", strings.Replace(configMap, "64MiB", "64MB", 1) + "---\n" + deployment,
			9, "line 9: cache.size: ambiguous unit"},
		{"ConfigMap without zerohop.yaml", "kind: ConfigMap\nmetadata: {name: zerohop}\ndata: {other: x}\n---\n" + deployment,
			0, `ConfigMap "zerohop" has no zerohop.yaml`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inject.Stream([]byte(tt.in), inject.Options{ConfigMap: "zerohop"})
			var e *inject.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v; want an *inject.Error", err)
			}
			if e.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v (line %d); want line %d and %q", err, e.Line, tt.line, tt.want)
			}
		})
	}
}

// TestStreamConfigMapWarning warns when the workloads reference a
// ConfigMap that is not in the input (in their namespace).
func TestStreamConfigMapWarning(t *testing.T) {
	inNS := func(doc, ns string) string {
		return strings.Replace(doc, "metadata:\n  name:", "metadata:\n  namespace: "+ns+"\n  name:", 1)
	}
	for _, tt := range []struct {
		name, in, configMap string
		warn                string
	}{
		{"missing", deployment, "zerohop", `ConfigMap "zerohop" is not in the input`},
		{"present", configMap + "---\n" + deployment, "zerohop", ""},
		{"other namespace", inNS(configMap, "a") + "---\n" + inNS(deployment, "b"), "zerohop", `ConfigMap "zerohop" in namespace b`},
		{"same namespace", inNS(configMap, "a") + "---\n" + inNS(deployment, "a"), "zerohop", ""},
		{"other name", configMap + "---\n" + deployment, "gateway", `ConfigMap "gateway" is not`},
		{"defaults, no ConfigMap", deployment, "", ""},
		{"no workload", configMap, "gateway", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := inject.Stream([]byte(tt.in), inject.Options{ConfigMap: tt.configMap})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(r.Warnings, "\n")
			if (tt.warn == "") != (got == "") || !strings.Contains(got, tt.warn) {
				t.Errorf("warnings %q; want %q", got, tt.warn)
			}
			if !strings.Contains(string(r.Output), "name: zerohop-cache") && strings.Contains(tt.in, "Deployment") {
				t.Errorf("not injected:\n%s", r.Output)
			}
		})
	}
}

// TestShippedManifestsInject runs the shipped ConfigMap and Deployment
// through Stream as one file: no error, no warning.
func TestShippedManifestsInject(t *testing.T) {
	cm, err := os.ReadFile("../../deploy/kubernetes/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := os.ReadFile("../../deploy/kubernetes/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := inject.Stream(append(append(cm, "\n---\n"...), d...), inject.Options{ConfigMap: "zerohop"})
	if err != nil || len(r.Warnings) > 0 {
		t.Fatalf("err %v, warnings %q", err, r.Warnings)
	}
}

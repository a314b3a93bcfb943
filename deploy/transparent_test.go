package deploy_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/inject"
)

// TestTransparentManifestsAgree: the transparent variant's init
// container, sidecar and ConfigMap agree: the rules exempt the sidecar's
// user, redirect to the transparent listener's port, run first with
// NET_ADMIN only added; the app sets no proxy variables; and what
// zerohop inject --transparent makes of the plain app is the same pod.
func TestTransparentManifestsAgree(t *testing.T) {
	var cm corev1.ConfigMap
	strict(t, "kubernetes/transparent/configmap.yaml", &cm)
	cfg, err := config.Parse("configmap:"+inject.ConfigFileName, []byte(cm.Data[inject.ConfigFileName]))
	if err != nil {
		t.Fatalf("the shipped configuration is invalid: %v", err)
	}
	var d appsv1.Deployment
	strict(t, "kubernetes/transparent/deployment.yaml", &d)
	spec := &d.Spec.Template.Spec
	for _, err := range inject.Verify(spec, cfg) {
		t.Error(err)
	}
	ic := spec.InitContainers[0]
	if ic.Name != inject.InitContainerName {
		t.Fatalf("first init container %q; want %q", ic.Name, inject.InitContainerName)
	}
	if sc := ic.SecurityContext; sc == nil || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || sc.Privileged == nil || *sc.Privileged {
		t.Error("the init container must drop ALL capabilities but NET_ADMIN and NET_RAW, unprivileged")
	}
	for _, c := range spec.Containers {
		for _, e := range c.Env {
			if strings.EqualFold(e.Name, "HTTP_PROXY") {
				t.Errorf("container %s sets %s: the transparent variant is for apps without proxy settings", c.Name, e.Name)
			}
		}
	}

	// Verify catches a sidecar whose user the rules do not exempt.
	bad := spec.DeepCopy()
	uid := int64(1000)
	for i := range bad.InitContainers {
		if bad.InitContainers[i].Name == inject.ContainerName {
			bad.InitContainers[i].SecurityContext.RunAsUser = &uid
		}
	}
	found := false
	for _, err := range inject.Verify(bad, cfg) {
		found = found || strings.Contains(err.Error(), "--proxy-uid")
	}
	if !found {
		t.Error("Verify did not notice the rules exempting another user than the sidecar's")
	}

	// inject --transparent on the bare app gives the same init containers.
	var app appsv1.Deployment
	app.Spec.Template.Spec.Containers = []corev1.Container{{Name: "app", Image: "registry.example.com/legacy-app:1.0"}}
	if err := inject.PodSpec(&app.Spec.Template.Spec, inject.Options{ConfigMap: "zerohop-transparent", Config: cfg, Transparent: true}); err != nil {
		t.Fatal(err)
	}
	got := app.Spec.Template.Spec.InitContainers
	if len(got) != 2 || got[0].Name != inject.InitContainerName || !slices.Equal(got[0].Args, ic.Args) {
		t.Errorf("inject --transparent: init containers %v; want %q first with args %q", names(got), inject.InitContainerName, ic.Args)
	}
	if env, want := app.Spec.Template.Spec.Containers[0].Env, spec.Containers[0].Env; !slices.Equal(env, want) {
		t.Errorf("inject --transparent: app env %v; want the shipped %v", env, want)
	}

	df, err := os.ReadFile("Dockerfile.init")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(df), "iptables") || !strings.Contains(string(df), `ENTRYPOINT ["/zerohop"]`) {
		t.Error("Dockerfile.init must ship iptables and the zerohop entrypoint the init container's args are for")
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// Package inject adds the zerohop sidecar to Kubernetes workload manifests,
// as istioctl kube-inject does for Istio: a native sidecar (an init
// container with restartPolicy: Always), a memory-backed emptyDir shared
// with the app containers (mounted read-only there), the configuration
// volume and the environment variables that point apps at the sidecar. It
// also checks that a pod spec and a zerohop configuration agree.
package inject

import (
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/zerohop/zerohop/config"
)

// Names of what Inject adds.
const (
	ContainerName   = "zerohop"
	CacheVolume     = "zerohop-cache"
	ConfigVolume    = "zerohop-config"
	ConfigMountPath = "/etc/zerohop"
	ConfigFileName  = "zerohop.yaml"
)

// Options say what to inject. Zero fields take the documented defaults.
type Options struct {
	// Image of the sidecar. Default ghcr.io/zerohop/zerohop:latest.
	Image string
	// ConfigMap holding zerohop.yaml; "" runs on embedded defaults.
	// Default "zerohop".
	ConfigMap string
	// Config is the configuration the sidecar will run with, for paths,
	// ports and the cache size. Default config.Default().
	Config *config.Config
	// Transparent adds the init container that installs the interception
	// rules (zerohop iptables) redirecting the app's outbound TCP to the
	// Config's transparent listener. Default false.
	Transparent bool
	// InitImage runs the init container: the zerohop binary with
	// iptables (deploy/Dockerfile.init). Default
	// ghcr.io/zerohop/zerohop-init:latest.
	InitImage string
	// InterceptPorts are the destination ports redirected, as zerohop
	// iptables --ports takes them. Default "80".
	InterceptPorts string
	// ExcludeCIDRs are destinations never redirected (zerohop iptables
	// --exclude-cidrs). Default "".
	ExcludeCIDRs string
}

func (o *Options) defaults() {
	if o.Image == "" {
		o.Image = "ghcr.io/zerohop/zerohop:latest"
	}
	if o.Config == nil {
		o.Config = config.Default()
	}
	if o.InitImage == "" {
		o.InitImage = "ghcr.io/zerohop/zerohop-init:latest"
	}
	if o.InterceptPorts == "" {
		o.InterceptPorts = "80"
	}
}

// ErrUnsupported is returned for a document whose kind carries no pod
// template; such documents are passed through unchanged instead.
var ErrUnsupported = errors.New("inject: kind has no pod template")

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// Manifests injects every workload in a multi-document YAML stream and
// passes other documents through unchanged. Already injected workloads
// are left as they are, so injecting twice changes nothing. Stream does
// the same and also returns warnings.
func Manifests(in []byte, o Options) ([]byte, error) {
	r, err := Stream(in, o)
	if err != nil {
		return nil, err
	}
	return r.Output, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func document(doc []byte, o Options) ([]byte, error) {
	var meta struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return nil, err
	}
	var obj any
	var spec *corev1.PodSpec
	switch meta.Kind {
	case "Pod":
		x := &corev1.Pod{}
		obj, spec = x, &x.Spec
	case "Deployment":
		x := &appsv1.Deployment{}
		obj, spec = x, &x.Spec.Template.Spec
	case "StatefulSet":
		x := &appsv1.StatefulSet{}
		obj, spec = x, &x.Spec.Template.Spec
	case "DaemonSet":
		x := &appsv1.DaemonSet{}
		obj, spec = x, &x.Spec.Template.Spec
	case "ReplicaSet":
		x := &appsv1.ReplicaSet{}
		obj, spec = x, &x.Spec.Template.Spec
	case "Job":
		x := &batchv1.Job{}
		obj, spec = x, &x.Spec.Template.Spec
	case "CronJob":
		x := &batchv1.CronJob{}
		obj, spec = x, &x.Spec.JobTemplate.Spec.Template.Spec
	default:
		return nil, ErrUnsupported
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, err
	}
	if err := PodSpec(spec, o); err != nil {
		return nil, err
	}
	return yaml.Marshal(obj)
}

// PodSpec injects the sidecar into spec.
func PodSpec(spec *corev1.PodSpec, o Options) error {
	o.defaults()
	for _, c := range spec.InitContainers {
		if c.Name == ContainerName {
			return nil // already injected
		}
	}
	for _, c := range spec.Containers {
		if c.Name == ContainerName {
			return fmt.Errorf("a container is already named %q", ContainerName)
		}
	}
	cfg := o.Config
	cacheDir := cfg.Cache.Dir
	listen := appAddress(cfg)
	adminURL := "http://" + cfg.Admin.Address
	always := corev1.ContainerRestartPolicyAlways
	probe := func(p string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
			Command: []string{"/zerohop", "probe", "--url", adminURL + p}}}}
	}
	args := []string{"run"}
	if o.ConfigMap != "" {
		args = append(args, "--config", path.Join(ConfigMountPath, ConfigFileName))
	}
	_, port, _ := net.SplitHostPort(listen)
	var portNum int32
	fmt.Sscan(port, &portNum)
	no, yes := false, true
	uid := int64(SidecarUID)
	// The tmpfs pages of the cache file are charged to the sidecar; a
	// rebuild holds two files for a moment.
	fileMiB := int64(cfg.Cache.Size) >> 20
	sc := corev1.Container{
		Name:           ContainerName,
		Image:          o.Image,
		RestartPolicy:  &always,
		Args:           args,
		Ports:          []corev1.ContainerPort{{Name: "zerohop-proxy", ContainerPort: portNum}},
		StartupProbe:   probe("/readyz"),
		ReadinessProbe: probe("/readyz"),
		LivenessProbe:  probe("/healthz"),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("50m"),
				corev1.ResourceMemory: resource.MustParse(fmt.Sprintf("%dMi", 2*fileMiB+32)),
			},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(fmt.Sprintf("%dMi", 2*fileMiB+128))},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot: &yes, RunAsUser: &uid, ReadOnlyRootFilesystem: &yes,
			AllowPrivilegeEscalation: &no, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: CacheVolume, MountPath: cacheDir}},
	}
	sc.StartupProbe.PeriodSeconds, sc.StartupProbe.FailureThreshold = 1, 30
	if o.ConfigMap != "" {
		sc.VolumeMounts = append(sc.VolumeMounts, corev1.VolumeMount{Name: ConfigVolume, MountPath: ConfigMountPath, ReadOnly: true})
	}
	spec.InitContainers = append([]corev1.Container{sc}, spec.InitContainers...)

	size := resource.MustParse(fmt.Sprintf("%dMi", 2*fileMiB+16))
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: CacheVolume, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &size}}})
	if o.ConfigMap != "" {
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: ConfigVolume, VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: o.ConfigMap}}}})
	}
	logDir := path.Dir(cfg.Invalidation.Log)
	logSub, inCache := strings.CutPrefix(logDir, strings.TrimSuffix(cacheDir, "/")+"/")
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.SecurityContext.FSGroup == nil {
		// Apps append purges to the log; a common group lets them write.
		g := uid
		spec.SecurityContext.FSGroup = &g
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: CacheVolume, MountPath: cacheDir, ReadOnly: true})
		if inCache {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: CacheVolume, MountPath: logDir, SubPath: logSub})
		}
		// Both spellings: curl and wget read only the lower-case ones, Go
		// and Python both. A value the container already has wins (for
		// both), except that NO_PROXY gains what must bypass the sidecar.
		// With interception the app needs no proxy settings (and one that
		// has its own keeps them).
		if !o.Transparent {
			proxy := "http://" + listen
			if v, ok := envValue(c, "HTTP_PROXY", "http_proxy"); ok {
				proxy = v
			}
			setEnv(c, "HTTP_PROXY", proxy)
			setEnv(c, "http_proxy", proxy)
			noProxy, _ := envValue(c, "NO_PROXY", "no_proxy")
			noProxy = mergeList(noProxy, NoProxy(cfg))
			putEnv(c, "NO_PROXY", noProxy)
			putEnv(c, "no_proxy", noProxy)
		}
		setEnv(c, "ZEROHOP_CACHE_DIR", cacheDir)
		setEnv(c, "ZEROHOP_SIDECAR", listen)
	}
	if o.Transparent {
		return addInterception(spec, o)
	}
	return nil
}

// setEnv adds name=value unless the container already sets name.
func setEnv(c *corev1.Container, name, value string) {
	for _, e := range c.Env {
		if e.Name == name {
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

// putEnv sets name=value, replacing a plain value the container has.
func putEnv(c *corev1.Container, name, value string) {
	for i := range c.Env {
		if c.Env[i].Name == name {
			if c.Env[i].ValueFrom == nil {
				c.Env[i].Value = value
			}
			return
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

// envValue returns the plain value of the first of names the container
// sets.
func envValue(c *corev1.Container, names ...string) (string, bool) {
	for _, n := range names {
		for _, e := range c.Env {
			if e.Name == n && e.ValueFrom == nil {
				return e.Value, true
			}
		}
	}
	return "", false
}

// mergeList adds to the comma-separated list the entries of add it lacks.
func mergeList(list string, add []string) string {
	var out []string
	have := map[string]bool{}
	for _, e := range strings.Split(list, ",") {
		if e = strings.TrimSpace(e); e != "" && !have[strings.ToLower(e)] {
			out = append(out, e)
			have[strings.ToLower(e)] = true
		}
	}
	for _, e := range add {
		if !have[strings.ToLower(e)] {
			out = append(out, e)
			have[strings.ToLower(e)] = true
		}
	}
	return strings.Join(out, ",")
}

// NoProxy lists what an app container must reach directly, not through
// the sidecar: inject sets it as NO_PROXY and no_proxy. These are the
// pod's own addresses (loopback, where the sidecar and the other
// containers listen, and the admin endpoint's host), which a forward
// listener refuses by default, and the cloud metadata and credential
// services that SDKs call over plain HTTP (AWS IMDS, ECS and EKS Pod
// Identity credentials, GCP and Azure metadata, Alibaba Cloud), which it
// refuses too. Entries are host names or IP addresses, the forms curl,
// wget, Go and Python all match.
func NoProxy(cfg *config.Config) []string {
	list := []string{"localhost", "127.0.0.1", "::1"}
	for _, addr := range []string{cfg.Admin.Address, appAddress(cfg)} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
			continue
		}
		if !slices.Contains(list, host) {
			list = append(list, host)
		}
	}
	return append(list, "169.254.169.254", "169.254.170.2", "169.254.170.23",
		"fd00:ec2::254", "fd00:ec2::23", "100.100.100.200", "metadata.google.internal")
}

// appAddress is where apps send misses: the first forward listener, else
// the first listener; a listener on every address is reached on
// 127.0.0.1.
func appAddress(cfg *config.Config) string {
	addr := config.DefaultListenerAddress
	if len(cfg.Listeners) > 0 {
		addr = cfg.Listeners[0].Address
	}
	for _, l := range cfg.Listeners {
		if l.Mode == config.ModeForward {
			addr = l.Address
			break
		}
	}
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// Verify reports every way in which spec disagrees with cfg: the sidecar
// is a native sidecar, the cache volume is a memory emptyDir big enough for
// two cache files, mounted at cache.dir (read-only in every app
// container), ports and the app's proxy settings match the listener, and
// probes use the admin address.
func Verify(spec *corev1.PodSpec, cfg *config.Config) []error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	var sc *corev1.Container
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == ContainerName {
			sc = &spec.InitContainers[i]
		}
	}
	if sc == nil {
		return []error{fmt.Errorf("no init container named %q", ContainerName)}
	}
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		bad("sidecar: restartPolicy must be Always (a native sidecar)")
	}
	var vol *corev1.Volume
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == CacheVolume {
			vol = &spec.Volumes[i]
		}
	}
	switch {
	case vol == nil || vol.EmptyDir == nil:
		bad("volume %q: must be an emptyDir", CacheVolume)
	case vol.EmptyDir.Medium != corev1.StorageMediumMemory:
		bad("volume %q: medium must be Memory (tmpfs)", CacheVolume)
	case vol.EmptyDir.SizeLimit == nil:
		bad("volume %q: needs a sizeLimit", CacheVolume)
	case vol.EmptyDir.SizeLimit.Value() < 2*int64(cfg.Cache.Size):
		bad("volume %q: sizeLimit %s is under twice cache.size %s (a rebuild holds two files)", CacheVolume, vol.EmptyDir.SizeLimit, cfg.Cache.Size)
	}
	mountOf := func(c *corev1.Container) *corev1.VolumeMount {
		for i := range c.VolumeMounts {
			if c.VolumeMounts[i].Name == CacheVolume {
				return &c.VolumeMounts[i]
			}
		}
		return nil
	}
	logDir := path.Dir(cfg.Invalidation.Log)
	if m := mountOf(sc); m == nil || m.MountPath != cfg.Cache.Dir || m.ReadOnly {
		bad("sidecar: must mount %q read-write at cache.dir %s", CacheVolume, cfg.Cache.Dir)
	}
	listen := appAddress(cfg)
	_, port, _ := net.SplitHostPort(listen)
	found := false
	for _, p := range sc.Ports {
		found = found || fmt.Sprint(p.ContainerPort) == port
	}
	if !found {
		bad("sidecar: no containerPort %s (the listener %s)", port, listen)
	}
	for _, pr := range []*corev1.Probe{sc.StartupProbe, sc.ReadinessProbe, sc.LivenessProbe} {
		if pr == nil || pr.Exec == nil || !strings.Contains(strings.Join(pr.Exec.Command, " "), "http://"+cfg.Admin.Address+"/") {
			bad("sidecar: probes must exec zerohop probe against the admin address %s", cfg.Admin.Address)
			break
		}
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if m := mountOf(c); m == nil || m.MountPath != cfg.Cache.Dir || !m.ReadOnly {
			bad("container %s: must mount %q read-only at %s", c.Name, CacheVolume, cfg.Cache.Dir)
		}
		if strings.HasPrefix(logDir, strings.TrimSuffix(cfg.Cache.Dir, "/")+"/") {
			ok := false
			for _, m := range c.VolumeMounts {
				ok = ok || (m.Name == CacheVolume && m.MountPath == logDir && !m.ReadOnly &&
					path.Join(cfg.Cache.Dir, m.SubPath) == logDir)
			}
			if !ok {
				bad("container %s: must mount %q subPath %s read-write at %s (the invalidation log)", c.Name, CacheVolume,
					strings.TrimPrefix(logDir, strings.TrimSuffix(cfg.Cache.Dir, "/")+"/"), logDir)
			}
		}
		if !hasProxyEnv(c) && transparentListener(cfg) != nil {
			// An app that ignores proxy settings is intercepted instead.
		} else {
			errs = append(errs, verifyProxyEnv(c, cfg, listen)...)
		}
		for _, e := range c.Env {
			switch e.Name {
			case "ZEROHOP_SIDECAR":
				if e.Value != listen {
					bad("container %s: ZEROHOP_SIDECAR %q is not the listener %s", c.Name, e.Value, listen)
				}
			case "ZEROHOP_CACHE_DIR":
				if e.Value != cfg.Cache.Dir {
					bad("container %s: ZEROHOP_CACHE_DIR %q is not cache.dir %s", c.Name, e.Value, cfg.Cache.Dir)
				}
			}
		}
	}
	return append(errs, verifyInterception(spec, cfg, sc)...)
}

// verifyProxyEnv checks a container that uses the forward proxy: both
// spellings of the proxy variables (curl and wget read only http_proxy
// and no_proxy), pointing at the listener, and NO_PROXY holding every
// NoProxy entry.
func verifyProxyEnv(c *corev1.Container, cfg *config.Config, listen string) []error {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	_, upper := env["HTTP_PROXY"]
	_, lower := env["http_proxy"]
	if !upper && !lower {
		return nil // the app uses the client library alone
	}
	var errs []error
	for _, name := range []string{"HTTP_PROXY", "http_proxy"} {
		if v, ok := env[name]; !ok {
			errs = append(errs, fmt.Errorf("container %s: sets no %s (curl and wget read only http_proxy, some tools only HTTP_PROXY): set both", c.Name, name))
		} else if v != "http://"+listen {
			errs = append(errs, fmt.Errorf("container %s: %s %q is not the listener http://%s", c.Name, name, v, listen))
		}
	}
	for _, name := range []string{"NO_PROXY", "no_proxy"} {
		v, ok := env[name]
		if !ok {
			errs = append(errs, fmt.Errorf("container %s: sets no %s: the pod's own and the metadata addresses must bypass the sidecar (%s)", c.Name, name, strings.Join(NoProxy(cfg), ",")))
			continue
		}
		var missing []string
		for _, want := range NoProxy(cfg) {
			if !slices.ContainsFunc(strings.Split(v, ","), func(e string) bool { return strings.EqualFold(strings.TrimSpace(e), want) }) {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("container %s: %s %q lacks %s", c.Name, name, v, strings.Join(missing, ",")))
		}
	}
	return errs
}

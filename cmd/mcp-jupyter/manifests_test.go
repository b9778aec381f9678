package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

const manifestPath = "../../docs/kubernetes/mcp-jupyter.yaml"

// otherEnv are variables the manifests set for components of other
// branches (the checkpoint service reads its HMAC key from it).
var otherEnv = map[string]bool{"MCP_CHECKPOINT_SECRET": true}

// decodeStrict turns one YAML document into JSON and decodes it into v,
// refusing unknown fields (a misspelt or misplaced key fails the test, as
// kubectl --validate=strict would).
func decodeStrict(doc map[string]any, v any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func manifests(t *testing.T) (*appsv1.StatefulSet, *corev1.Service, *corev1.Secret) {
	t.Helper()
	b, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var sts *appsv1.StatefulSet
	var svc *corev1.Service
	var sec *corev1.Secret
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for i := 0; ; i++ {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var target any
		switch doc["kind"] {
		case "StatefulSet":
			sts = &appsv1.StatefulSet{}
			target = sts
		case "Service":
			svc = &corev1.Service{}
			target = svc
		case "Secret":
			sec = &corev1.Secret{}
			target = sec
		default:
			t.Fatalf("document %d: unexpected kind %v", i, doc["kind"])
		}
		if err := decodeStrict(doc, target); err != nil {
			t.Fatalf("document %d (%v) does not decode strictly into k8s.io/api: %v", i, doc["kind"], err)
		}
	}
	if sts == nil || svc == nil || sec == nil {
		t.Fatalf("want a StatefulSet, a Service and a Secret; got %v %v %v", sts != nil, svc != nil, sec != nil)
	}
	return sts, svc, sec
}

// manifestSet is what the manifests declare.
type manifestSet struct {
	sts *appsv1.StatefulSet
	svc *corev1.Service
	sec *corev1.Secret
}

// imageFacts are what the Dockerfile's runtime stage says: its ENV, USER,
// EXPOSE and VOLUME.
type imageFacts struct {
	env      map[string]string
	uid, gid int64
	expose   []string
	volumes  []string
}

// dockerfileFacts reads the Dockerfile's runtime settings.
func dockerfileFacts(t *testing.T) imageFacts {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := strings.ReplaceAll(string(b), "\\\n", " ")
	f := imageFacts{env: map[string]string{}}
	for _, line := range strings.Split(df, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "ENV":
			for _, kv := range fields[1:] {
				if k, v, ok := strings.Cut(kv, "="); ok {
					f.env[k] = strings.Trim(v, `"`)
				}
			}
		case "USER":
			u, g, _ := strings.Cut(fields[1], ":")
			f.uid, _ = strconv.ParseInt(u, 10, 64)
			f.gid, _ = strconv.ParseInt(g, 10, 64)
		case "EXPOSE":
			f.expose = append(f.expose, fields[1:]...)
		case "VOLUME":
			var vs []string
			if err := json.Unmarshal([]byte(strings.Join(fields[1:], " ")), &vs); err != nil {
				t.Fatalf("Dockerfile VOLUME %v: %v", fields[1:], err)
			}
			f.volumes = append(f.volumes, vs...)
		}
	}
	if f.uid == 0 || f.gid == 0 || len(f.expose) == 0 || len(f.volumes) == 0 {
		t.Fatalf("the Dockerfile's runtime settings did not parse: %+v", f)
	}
	return f
}

// benchFigures are the figures of docs/benchmarks.md the sizing rests on.
type benchFigures struct {
	kernelRSS     float64 // MiB an idle ipykernel keeps resident
	serverPeak    float64 // MiB the server peaks at under heavy output, without GOMEMLIMIT
	saveMBPerSec  float64 // checkpoint save throughput
	saveBenchName string
}

// benchmarkFigures reads the figures the manifest is sized from out of
// docs/benchmarks.md (the table make bench writes: "| pkg | BenchmarkX |
// runs | ns/op | 1.5 name, 2 other |").
func benchmarkFigures(t *testing.T) benchFigures {
	t.Helper()
	b, err := os.ReadFile("../../docs/benchmarks.md")
	if err != nil {
		t.Fatal(err)
	}
	metrics := map[string]map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 6 || !strings.HasPrefix(strings.TrimSpace(cells[2]), "Benchmark") {
			continue
		}
		name := strings.TrimSpace(cells[2])
		if metrics[name] == nil {
			metrics[name] = map[string]float64{}
		}
		for _, m := range strings.Split(cells[5], ",") {
			if v, unit, ok := strings.Cut(strings.TrimSpace(m), " "); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					metrics[name][unit] = f
				}
			}
		}
	}
	fig := func(bench, metric string) float64 {
		v, ok := metrics[bench][metric]
		if !ok || v <= 0 {
			t.Fatalf("docs/benchmarks.md has no %s of %s: the manifest's sizing rests on it", metric, bench)
		}
		return v
	}
	return benchFigures{
		kernelRSS:     fig("BenchmarkStartKernelPooled", "idle-rss-MiB-per-kernel"),
		serverPeak:    max(fig("BenchmarkOutput200MBRSS", "peak-rss-MiB-default"), fig("BenchmarkOutput200MBRSS", "peak-rss-MiB")),
		saveMBPerSec:  fig("BenchmarkSaveLoad250MB", "MB") / fig("BenchmarkSaveLoad250MB", "save-s"),
		saveBenchName: "BenchmarkSaveLoad250MB",
	}
}

// Kernels in a pod die with it; what the pod's end must leave room for.
const (
	// terminationMargin: after the server's grace, tini and the process
	// exit and a slow volume takes the log's last fsync; the kubelet's own
	// timing is not exact to the second either.
	terminationMargin = 10 * time.Second
	// weekend: Friday evening to Monday morning: a cull must not end a
	// kernel someone comes back to after it.
	weekend = 64 * time.Hour
)

// preStopSeconds returns how long the preStop hook sleeps, or an error
// when it is not the plain sleep the image can run.
func preStopSeconds(c corev1.Container) (time.Duration, error) {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
		return 0, errors.New("no preStop exec hook: the kubelet sends SIGTERM while kube-proxy and ingresses still route to the pod")
	}
	cmd := c.Lifecycle.PreStop.Exec.Command
	if len(cmd) != 2 || (cmd[0] != "/bin/sleep" && cmd[0] != "sleep") {
		return 0, fmt.Errorf("preStop %q: want [\"/bin/sleep\", \"<seconds>\"] (the image has coreutils' sleep; k8s.io/api 1.28 has no sleep action)", cmd)
	}
	n, err := strconv.Atoi(cmd[1])
	if err != nil || n < 1 || n > 30 {
		return 0, fmt.Errorf("preStop sleeps %q: want 1 to 30 seconds", cmd[1])
	}
	return time.Duration(n) * time.Second, nil
}

// checkManifests returns every way the manifests disagree with each other,
// with the image (Dockerfile), with the server's settings and with the
// measured figures. TestKubernetesManifests wants none;
// TestManifestChecksCatchMistakes proves each check can fail.
func checkManifests(m manifestSet, img imageFacts, bench benchFigures) []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	sts, svc, sec := m.sts, m.svc, m.sec
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
		fail("replicas must be 1: the data dir has one writer")
	}
	pod := sts.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		return append(bad, fmt.Sprintf("%d containers, want 1", len(pod.Containers)))
	}
	c := pod.Containers[0]

	// Settings: the server's defaults, then the image's ENV, then the
	// manifest's env: what the server in the pod runs with.
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
	}
	effective := map[string]string{}
	for k, v := range img.env {
		if known[k] {
			effective[k] = v
		}
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
		if !known[e.Name] && !otherEnv[e.Name] {
			fail("the manifest sets %s, which mcp-jupyter does not read", e.Name)
		}
		if e.Value != "" && known[e.Name] {
			effective[e.Name] = e.Value
		}
	}
	var args []string
	for _, s := range settings {
		if v, ok := effective[s.env]; ok {
			args = append(args, "--"+s.name, v)
		}
	}
	cfg, err := parseConfig("serve", args)
	if err != nil {
		return append(bad, fmt.Sprintf("the pod's settings do not parse: %v", err))
	}

	// Ports: the container listens where MCP_ADDR says, the image exposes
	// it, the Service, the probes and Prometheus reach it.
	if len(c.Ports) != 1 {
		return append(bad, fmt.Sprintf("%d container ports, want 1", len(c.Ports)))
	}
	port, portName := fmt.Sprint(c.Ports[0].ContainerPort), c.Ports[0].Name
	if "0.0.0.0:"+port != cfg.Addr {
		fail("containerPort %s does not match MCP_ADDR %s", port, cfg.Addr)
	}
	if !slices.Contains(img.expose, port) {
		fail("containerPort %s is not what the image EXPOSEs (%v)", port, img.expose)
	}
	if sp := svc.Spec.Ports; len(sp) != 1 || sp[0].TargetPort.String() != portName {
		fail("Service targetPort %v is not the container port %q", sp, portName)
	}
	ann := sts.Spec.Template.Annotations
	if ann["prometheus.io/port"] != port || ann["prometheus.io/path"] != pathMetrics || ann["prometheus.io/scrape"] != "true" {
		fail("the Prometheus annotations (port %q, path %q) do not name the container port %s and %s", ann["prometheus.io/port"], ann["prometheus.io/path"], port, pathMetrics)
	}
	if !equalLabels(svc.Spec.Selector, sts.Spec.Template.Labels) || !equalLabels(sts.Spec.Selector.MatchLabels, sts.Spec.Template.Labels) {
		fail("the Service or StatefulSet selector does not match the pod labels")
	}

	// Probes: paths the server serves, on the named port.
	probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
	want := map[string]string{"startup": pathReadyz, "liveness": pathLivez, "readiness": pathReadyz}
	for _, name := range []string{"startup", "liveness", "readiness"} {
		p := probes[name]
		if p == nil || p.HTTPGet == nil {
			fail("%s probe missing or not httpGet", name)
			continue
		}
		if !slices.Contains(servedPaths, p.HTTPGet.Path) || p.HTTPGet.Path != want[name] {
			fail("%s probe path %s: want %s (served: %v)", name, p.HTTPGet.Path, want[name], servedPaths)
		}
		if p.HTTPGet.Port.String() != portName {
			fail("%s probe port %s, want %s", name, p.HTTPGet.Port.String(), portName)
		}
	}
	if s := c.StartupProbe; s != nil && time.Duration(s.PeriodSeconds*s.FailureThreshold)*time.Second < 5*time.Minute {
		fail("the startup probe gives a long replay less than 5 minutes")
	}

	// The pod's end: preStop, then the server's grace (drain, then the
	// auto-checkpoints, then the close), then a margin, all inside
	// terminationGracePeriodSeconds, or the kubelet's SIGKILL cuts the
	// checkpoints short.
	preStop, err := preStopSeconds(c)
	if err != nil {
		fail("%v", err)
	}
	if pod.TerminationGracePeriodSeconds == nil {
		fail("terminationGracePeriodSeconds unset: Kubernetes' default 30 s")
	} else if tgp := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; cfg.ShutdownGrace > tgp-preStop-terminationMargin {
		fail("terminationGracePeriodSeconds %s leaves MCP_SHUTDOWN_GRACE %s less than preStop %s + grace + margin %s: the kubelet kills the server mid-checkpoint",
			tgp, cfg.ShutdownGrace, preStop, terminationMargin)
	}

	// Policy: the Friday to Monday path. Kernels die with the pod; the
	// shutdown must save them and leave them (not shut them down), the next
	// pod must restore them.
	if !cfg.AutoCheckpoint || !cfg.AutoRestore || !cfg.KernelsOutlive {
		fail("MCP_AUTO_CHECKPOINT %v, MCP_AUTO_RESTORE %v, MCP_KERNELS_OUTLIVE %v: a replaced pod loses its kernels' variables unless all are true",
			cfg.AutoCheckpoint, cfg.AutoRestore, cfg.KernelsOutlive)
	}
	if cfg.OrphanGrace == 0 && pod.ShareProcessNamespace != nil && *pod.ShareProcessNamespace {
		fail("MCP_ORPHAN_GRACE 0 relies on kernels dying with the server's PID namespace; shareProcessNamespace keeps them alive")
	}
	if cfg.CullIdle != 0 && cfg.CullIdle < weekend {
		fail("MCP_CULL_IDLE %s culls kernels over a weekend (%s): the agent would find them shut down on Monday", cfg.CullIdle, weekend)
	}

	// Sizing: the memory limit holds the server and the kernels it is
	// sized for; the checkpoint window saves them all; the volume holds
	// their auto-checkpoints above the free space the server keeps.
	kernels, err1 := strconv.Atoi(ann["mcp-jupyter/sized-for-kernels"])
	data, err2 := resource.ParseQuantity(ann["mcp-jupyter/sized-for-kernel-data"])
	if err1 != nil || err2 != nil || kernels < 1 {
		fail("annotations mcp-jupyter/sized-for-kernels %q and mcp-jupyter/sized-for-kernel-data %q must say what the limits are sized for",
			ann["mcp-jupyter/sized-for-kernels"], ann["mcp-jupyter/sized-for-kernel-data"])
	} else {
		const mib = 1 << 20
		dataMiB := float64(data.Value()) / mib
		need := bench.serverPeak + float64(kernels)*(bench.kernelRSS+dataMiB)
		if lim := c.Resources.Limits.Memory(); lim.IsZero() || float64(lim.Value())/mib < need {
			fail("limits.memory %s is under the server's peak %.0f MiB + %d kernels x (%.1f MiB idle + %.0f MiB data) = %.0f MiB (docs/benchmarks.md)",
				lim, bench.serverPeak, kernels, bench.kernelRSS, dataMiB, need)
		}
		window := cfg.ShutdownGrace - closeReserve(cfg.ShutdownGrace) - drainBudget(cfg.ShutdownGrace, cfg.AutoCheckpoint)
		save := time.Duration(float64(kernels) * dataMiB / bench.saveMBPerSec * float64(time.Second))
		if window < 2*save {
			fail("the auto-checkpoint window of MCP_SHUTDOWN_GRACE %s is %s: under twice the %s that %d kernels of %s take at %s's %.0f MB/s",
				cfg.ShutdownGrace, window, save, kernels, data.String(), bench.saveBenchName, bench.saveMBPerSec)
		}
		for _, vct := range sts.Spec.VolumeClaimTemplates {
			st := vct.Spec.Resources.Requests[corev1.ResourceStorage]
			if floor := int64(cfg.MinFreeDisk) + int64(kernels)*data.Value() + 1<<30; st.Value() < floor {
				fail("volume %s of %s holds less than MCP_MIN_FREE_DISK + the kernels' auto-checkpoints + 1 GiB of log (%d bytes)", vct.Name, st.String(), floor)
			}
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		if req.IsZero() || lim.IsZero() || lim.Cmp(req) < 0 {
			fail("%s: limit %s under request %s (or either unset)", r, lim.String(), req.String())
		}
	}

	// Data: a PVC on the data dir, which the image declares a volume; the
	// image's HOME writable on a read-only root.
	if !slices.Contains(img.volumes, cfg.DataDir) {
		fail("MCP_DATA_DIR %s is not the image's VOLUME %v", cfg.DataDir, img.volumes)
	}
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm.Name
	}
	onPVC := false
	for _, vct := range sts.Spec.VolumeClaimTemplates {
		onPVC = onPVC || (mounts[cfg.DataDir] != "" && vct.Name == mounts[cfg.DataDir])
	}
	if !onPVC {
		fail("the data dir %s is not on a PersistentVolumeClaim", cfg.DataDir)
	}
	if home := img.env["HOME"]; home == "" || mounts[home] == "" {
		fail("the image's HOME %q is not a writable mount (the root filesystem is read-only)", home)
	}

	// Security: the image's numeric user, its group as fsGroup (the
	// kubelet makes the volume group-writable; nothing chowns at start).
	psc := pod.SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
		fail("the pod must set runAsNonRoot")
	case psc.RunAsUser == nil || *psc.RunAsUser != img.uid || psc.RunAsGroup == nil || *psc.RunAsGroup != img.gid:
		fail("runAsUser/runAsGroup %v/%v is not the image's USER %d:%d", deref(psc.RunAsUser), deref(psc.RunAsGroup), img.uid, img.gid)
	case psc.FSGroup == nil || *psc.FSGroup != img.gid:
		fail("fsGroup %v is not the image's group %d: the volume would not be writable", deref(psc.FSGroup), img.gid)
	}

	// Secrets: the token and the checkpoint key come from the Secret.
	for _, name := range []string{"MCP_TOKEN", "MCP_CHECKPOINT_SECRET"} {
		e, ok := env[name]
		if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != sec.Name {
			fail("%s must come from the Secret %s", name, sec.Name)
			continue
		}
		if _, ok := sec.StringData[e.ValueFrom.SecretKeyRef.Key]; !ok {
			fail("%s names key %q, which the Secret lacks", name, e.ValueFrom.SecretKeyRef.Key)
		}
	}
	return bad
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestKubernetesManifests: the manifests decode strictly into the
// Kubernetes API types and agree with the binary, the image and the
// measured figures: probes on paths it serves, the port it listens on and
// the image exposes, preStop + MCP_SHUTDOWN_GRACE (drain and
// auto-checkpoints) + a margin within terminationGracePeriodSeconds, a PVC
// on the data dir the image declares, the image's uid and gid as user and
// fsGroup, limits over requests and over what the kernels it is sized for
// take, the auto-checkpoint and restore policy, and only environment
// variables something reads.
func TestKubernetesManifests(t *testing.T) {
	sts, svc, sec := manifests(t)
	for _, p := range checkManifests(manifestSet{sts, svc, sec}, dockerfileFacts(t), benchmarkFigures(t)) {
		t.Error(p)
	}
	// The alert on the auto-checkpoint pass uses the window this manifest
	// gives it.
	var args []string
	for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "MCP_SHUTDOWN_GRACE" {
			args = append(args, "--shutdown-grace", e.Value)
		}
	}
	cfg, err := parseConfig("serve", args)
	if err != nil {
		t.Fatal(err)
	}
	window := cfg.ShutdownGrace - closeReserve(cfg.ShutdownGrace) - drainBudget(cfg.ShutdownGrace, true)
	rule := loadAlertRules(t)["MCPJupyterAutoCheckpointsMayNotFitTheGrace"]
	if want := fmt.Sprintf("> %d", int(window.Seconds())); !strings.HasSuffix(strings.TrimSpace(rule), want) {
		t.Errorf("alert MCPJupyterAutoCheckpointsMayNotFitTheGrace %q: want its threshold %q, the manifest's auto-checkpoint window %s", rule, want, window)
	}
	// The numbers as documented (docs/deployment.md, "Kubernetes"): a change here is a
	// change there.
	pod := sts.Spec.Template.Spec
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds != 60 {
		t.Error("terminationGracePeriodSeconds is documented as 60")
	}
}

// TestManifestChecksCatchMistakes: each check of checkManifests fails on
// the mistake it is there for, made on a copy of the real manifests.
func TestManifestChecksCatchMistakes(t *testing.T) {
	img, bench := dockerfileFacts(t), benchmarkFigures(t)
	setEnv := func(c *corev1.Container, name, value string) {
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i].Value = value
				return
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	}
	for _, mistake := range []struct {
		name, want string
		make       func(m manifestSet)
	}{
		{"terminationGracePeriodSeconds lowered", "the kubelet kills the server mid-checkpoint", func(m manifestSet) {
			*m.sts.Spec.Template.Spec.TerminationGracePeriodSeconds -= 1
		}},
		{"grace raised", "the kubelet kills the server mid-checkpoint", func(m manifestSet) {
			setEnv(&m.sts.Spec.Template.Spec.Containers[0], "MCP_SHUTDOWN_GRACE", "55s")
		}},
		{"no grace period", "terminationGracePeriodSeconds unset", func(m manifestSet) {
			m.sts.Spec.Template.Spec.TerminationGracePeriodSeconds = nil
		}},
		{"no preStop", "no preStop", func(m manifestSet) { m.sts.Spec.Template.Spec.Containers[0].Lifecycle = nil }},
		{"preStop longer", "mid-checkpoint", func(m manifestSet) {
			m.sts.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.Exec.Command[1] = "15"
		}},
		{"memory limit too low", "limits.memory", func(m manifestSet) {
			m.sts.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("2Gi")
			m.sts.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("1Gi")
		}},
		{"sized for more kernels", "limits.memory", func(m manifestSet) {
			m.sts.Spec.Template.Annotations["mcp-jupyter/sized-for-kernels"] = "40"
		}},
		{"limit under request", "limit", func(m manifestSet) {
			m.sts.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("4")
		}},
		{"fsGroup not the image's", "fsGroup", func(m manifestSet) {
			g := int64(2000)
			m.sts.Spec.Template.Spec.SecurityContext.FSGroup = &g
		}},
		{"uid not the image's", "runAsUser", func(m manifestSet) {
			u := int64(1000)
			m.sts.Spec.Template.Spec.SecurityContext.RunAsUser = &u
		}},
		{"data dir off the volume", "PersistentVolumeClaim", func(m manifestSet) {
			setEnv(&m.sts.Spec.Template.Spec.Containers[0], "MCP_DATA_DIR", "/home/mcp/data")
		}},
		{"probe path the server does not serve", "probe path", func(m manifestSet) {
			m.sts.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Path = "/healthz"
		}},
		{"port not MCP_ADDR", "MCP_ADDR", func(m manifestSet) {
			setEnv(&m.sts.Spec.Template.Spec.Containers[0], "MCP_ADDR", "0.0.0.0:8080")
		}},
		{"a setting nothing reads", "does not read", func(m manifestSet) {
			setEnv(&m.sts.Spec.Template.Spec.Containers[0], "MCP_AUTOCHECKPOINT", "true")
		}},
		{"auto-restore off", "loses its kernels' variables", func(m manifestSet) {
			setEnv(&m.sts.Spec.Template.Spec.Containers[0], "MCP_AUTO_RESTORE", "false")
		}},
		{"kernels shut down at stop", "loses its kernels' variables", func(m manifestSet) {
			setEnv(&m.sts.Spec.Template.Spec.Containers[0], "MCP_KERNELS_OUTLIVE", "false")
		}},
		{"cull over a weekend", "over a weekend", func(m manifestSet) {
			setEnv(&m.sts.Spec.Template.Spec.Containers[0], "MCP_CULL_IDLE", "1h")
		}},
		{"kernels outliving the server in the pod", "shareProcessNamespace", func(m manifestSet) {
			yes := true
			m.sts.Spec.Template.Spec.ShareProcessNamespace = &yes
		}},
		{"volume too small", "holds less than", func(m manifestSet) {
			m.sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
		}},
	} {
		t.Run(mistake.name, func(t *testing.T) {
			sts, svc, sec := manifests(t)
			if got := checkManifests(manifestSet{sts, svc, sec}, img, bench); len(got) != 0 {
				t.Fatalf("the real manifests fail: %v", got)
			}
			mistake.make(manifestSet{sts, svc, sec})
			got := checkManifests(manifestSet{sts, svc, sec}, img, bench)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, mistake.want) }) {
				t.Errorf("the mistake passed: want a problem naming %q, got %q", mistake.want, got)
			}
		})
	}
}

func equalLabels(a, b map[string]string) bool {
	if len(a) == 0 {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestManifestStrictDecodeCatchesMistakes: the strict decode is what makes
// the test above worth having: a misspelt field fails it.
func TestManifestStrictDecodeCatchesMistakes(t *testing.T) {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte("apiVersion: v1\nkind: Service\nspec:\n  ports:\n    - port: 3000\n      targetPortt: http\n"), &doc); err != nil {
		t.Fatal(err)
	}
	if err := decodeStrict(doc, &corev1.Service{}); err == nil || !strings.Contains(err.Error(), "targetPortt") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}

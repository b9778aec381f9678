package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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

// TestKubernetesManifests: the manifests decode strictly into the
// Kubernetes API types and agree with the binary: probes on paths it
// serves, the port it listens on, a termination grace above the shutdown
// grace, a PVC on the data dir, fsGroup, non-root, the resources asked for,
// and only environment variables something reads.
func TestKubernetesManifests(t *testing.T) {
	sts, svc, sec := manifests(t)
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 1 {
		t.Error("replicas must be 1: the data dir has one writer")
	}
	pod := sts.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	env := map[string]corev1.EnvVar{}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
	}
	for _, e := range c.Env {
		env[e.Name] = e
		if !known[e.Name] && !otherEnv[e.Name] {
			t.Errorf("the manifest sets %s, which mcp-jupyter does not read", e.Name)
		}
	}
	var args []string
	for _, e := range c.Env {
		if e.Value != "" && e.Name != "MCP_CHECKPOINT_SECRET" {
			for _, s := range settings {
				if s.env == e.Name {
					args = append(args, "--"+s.name, e.Value)
				}
			}
		}
	}
	cfg, err := parseConfig("serve", args)
	if err != nil {
		t.Fatalf("the manifest's settings do not parse: %v", err)
	}
	// Ports: the container listens where MCP_ADDR says; the Service and the
	// probes reach it.
	if len(c.Ports) != 1 || fmt.Sprintf("0.0.0.0:%d", c.Ports[0].ContainerPort) != cfg.Addr {
		t.Errorf("containerPort %v does not match MCP_ADDR %s", c.Ports, cfg.Addr)
	}
	portName := c.Ports[0].Name
	if sp := svc.Spec.Ports; len(sp) != 1 || sp[0].TargetPort.String() != portName {
		t.Errorf("Service targetPort %v is not the container port %q", sp, portName)
	}
	if !equalLabels(svc.Spec.Selector, sts.Spec.Template.Labels) || !equalLabels(sts.Spec.Selector.MatchLabels, sts.Spec.Template.Labels) {
		t.Error("the Service or StatefulSet selector does not match the pod labels")
	}
	// Probes: paths the server serves, on the named port.
	probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
	want := map[string]string{"startup": pathReadyz, "liveness": pathLivez, "readiness": pathReadyz}
	for name, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe missing or not httpGet", name)
			continue
		}
		if !slices.Contains(servedPaths, p.HTTPGet.Path) || p.HTTPGet.Path != want[name] {
			t.Errorf("%s probe path %s: want %s (served: %v)", name, p.HTTPGet.Path, want[name], servedPaths)
		}
		if p.HTTPGet.Port.String() != portName {
			t.Errorf("%s probe port %s, want %s", name, p.HTTPGet.Port.String(), portName)
		}
	}
	if s := c.StartupProbe; s != nil && time.Duration(s.PeriodSeconds*s.FailureThreshold)*time.Second < 5*time.Minute {
		t.Error("the startup probe gives a long replay less than 5 minutes")
	}
	// Grace: Kubernetes waits longer than the server's own shutdown.
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds != 30 {
		t.Error("terminationGracePeriodSeconds must be 30")
	} else if grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; cfg.ShutdownGrace >= grace {
		t.Errorf("MCP_SHUTDOWN_GRACE %s is not under terminationGracePeriodSeconds %s", cfg.ShutdownGrace, grace)
	}
	// Data: a PVC on the data dir.
	if cfg.DataDir != "/data/mcp" {
		t.Errorf("MCP_DATA_DIR = %s, want /data/mcp", cfg.DataDir)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.MountPath == cfg.DataDir {
			for _, vct := range sts.Spec.VolumeClaimTemplates {
				mounted = mounted || vct.Name == m.Name
			}
		}
	}
	if !mounted {
		t.Error("the data dir is not on a PersistentVolumeClaim")
	}
	// Security: non-root, fsGroup (no chown at start).
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.FSGroup == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("the pod must run as a non-root user with an fsGroup")
	}
	// Resources: requests 500m/1Gi, limits 2/4Gi.
	for name, got := range map[string]string{
		"requests.cpu": c.Resources.Requests.Cpu().String(), "requests.memory": c.Resources.Requests.Memory().String(),
		"limits.cpu": c.Resources.Limits.Cpu().String(), "limits.memory": c.Resources.Limits.Memory().String(),
	} {
		if w := map[string]string{"requests.cpu": "500m", "requests.memory": "1Gi", "limits.cpu": "2", "limits.memory": "4Gi"}[name]; got != w {
			t.Errorf("%s = %s, want %s", name, got, w)
		}
	}
	// Secrets: the token and the checkpoint key come from the Secret.
	for _, name := range []string{"MCP_TOKEN", "MCP_CHECKPOINT_SECRET"} {
		e, ok := env[name]
		if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != sec.Name {
			t.Errorf("%s must come from the Secret %s", name, sec.Name)
			continue
		}
		if _, ok := sec.StringData[e.ValueFrom.SecretKeyRef.Key]; !ok {
			t.Errorf("%s names key %q, which the Secret lacks", name, e.ValueFrom.SecretKeyRef.Key)
		}
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

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
)

const clusterManifestPath = "../../docs/kubernetes/statefulset-cluster.yaml"

// clusterManifest is what statefulset-cluster.yaml declares.
type clusterManifest struct {
	sts      *appsv1.StatefulSet
	client   *corev1.Service // the agents' Service (port 3000)
	headless *corev1.Service // the routes' Service (clusterIP None)
	header   string
}

func readClusterManifest(t *testing.T) clusterManifest {
	t.Helper()
	b, err := os.ReadFile(clusterManifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var m clusterManifest
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
			m.sts = &appsv1.StatefulSet{}
			target = m.sts
		case "Service":
			target = &corev1.Service{}
		default:
			t.Fatalf("document %d: unexpected kind %v (no Secret in the file: see its header)", i, doc["kind"])
		}
		if err := decodeStrict(doc, target); err != nil {
			t.Fatalf("document %d (%v) does not decode strictly into k8s.io/api: %v", i, doc["kind"], err)
		}
		if svc, ok := target.(*corev1.Service); ok && svc.Spec.ClusterIP == corev1.ClusterIPNone {
			m.headless = svc
		} else if ok {
			m.client = svc
		}
	}
	if m.sts == nil || m.client == nil || m.headless == nil {
		t.Fatalf("want a StatefulSet, a client Service and a headless Service; got %v %v %v", m.sts != nil, m.client != nil, m.headless != nil)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		m.header += strings.TrimSpace(strings.TrimPrefix(line, "#")) + "\n"
	}
	return m
}

// asSingle is the cluster's pod seen as one server: replicas 1, without
// the cluster's settings and port. Every check of the single-server
// manifest (probes, the pod's end, sizing, security, secrets) must hold
// for it: a node is a whole server.
func (m clusterManifest) asSingle() manifestSet {
	sts := m.sts.DeepCopy()
	one := int32(1)
	sts.Spec.Replicas = &one
	c := &sts.Spec.Template.Spec.Containers[0]
	c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool {
		return strings.HasPrefix(e.Name, "MCP_CLUSTER_") || e.Name == "MCP_NODE_NAME"
	})
	c.Ports = slices.DeleteFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "cluster" })
	return manifestSet{sts: sts, svc: m.client, header: m.header}
}

// podConfig parses the settings pod i runs with (the image's ENV, then
// the manifest's env; the Secret's values and the pod's name put in as
// the kubelet would).
func podConfig(m clusterManifest, img imageFacts, i int) (config, error) {
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
	var bad []string
	for _, e := range m.sts.Spec.Template.Spec.Containers[0].Env {
		switch {
		case !known[e.Name] && !otherEnv[e.Name]:
			bad = append(bad, "the manifest sets "+e.Name+", which mcp-jupyter does not read")
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			effective[e.Name] = "a-secret-value-from-" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			effective[e.Name] = fmt.Sprintf("%s-%d", m.sts.Name, i)
		case e.Value != "":
			effective[e.Name] = e.Value
		}
	}
	if len(bad) > 0 {
		return config{}, errors.New(strings.Join(bad, "; "))
	}
	var args []string
	for _, s := range settings {
		if v, ok := effective[s.env]; ok {
			args = append(args, "--"+s.name, v)
		}
	}
	return parseConfig("serve", args)
}

// checkClusterManifest returns every way the cluster manifest is wrong:
// the pods' settings that do not parse, replicas that disagree with the
// routes, routes that do not name the pods through the headless Service,
// node names that are not the pods' names, secrets as literal values, a
// start order that cannot form the cluster.
func checkClusterManifest(m clusterManifest, img imageFacts, bench benchFigures) []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	for _, p := range checkManifests(m.asSingle(), img, bench) {
		fail("as one server: %s", p)
	}
	sts := m.sts
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas < 2 {
		return append(bad, "replicas: a cluster needs at least 2 (3 for a majority to survive one loss)")
	}
	n := int(*sts.Spec.Replicas)
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		fail("podManagementPolicy %q: want Parallel (a pod is ready only once the cluster formed: OrderedReady never starts pod 1)", sts.Spec.PodManagementPolicy)
	}
	if sts.Spec.ServiceName != m.headless.Name {
		fail("serviceName %q is not the headless Service %q: the pods' DNS names would not exist", sts.Spec.ServiceName, m.headless.Name)
	}
	if !m.headless.Spec.PublishNotReadyAddresses {
		fail("the headless Service must publishNotReadyAddresses: pods become ready only after reaching each other by these names")
	}
	if !equalLabels(m.headless.Spec.Selector, sts.Spec.Template.Labels) {
		fail("the headless Service's selector does not match the pod labels")
	}
	c := sts.Spec.Template.Spec.Containers[0]
	var clusterPort int32
	for _, p := range c.Ports {
		if p.Name == "cluster" {
			clusterPort = p.ContainerPort
		}
	}
	if hp := m.headless.Spec.Ports; len(hp) != 1 || hp[0].TargetPort.String() != "cluster" || hp[0].Port != clusterPort {
		fail("the headless Service's port %v is not the container port cluster (%d)", hp, clusterPort)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["MCP_NODE_NAME"]; e.Value != "" || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		fail("MCP_NODE_NAME must come from the pod's name (fieldRef metadata.name): a node's name must be stable and its own")
	}
	for _, name := range []string{"MCP_TOKEN", "MCP_CHECKPOINT_SECRET", "MCP_CLUSTER_TOKEN"} {
		e := env[name]
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secretName {
			fail("%s must come from the Secret %s, the same for every pod", name, secretName)
			continue
		}
		if key := e.ValueFrom.SecretKeyRef.Key; !strings.Contains(m.header, "--from-literal="+key+`="$(openssl rand -hex 32)"`) {
			fail("%s names key %q, which the header's kubectl create secret does not fill with openssl rand -hex 32", name, key)
		}
	}
	mounts := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = true
	}
	for i := range n {
		cfg, err := podConfig(m, img, i)
		if err != nil {
			fail("pod %d's settings do not parse: %v", i, err)
			continue
		}
		cl := cfg.Cluster
		pod := fmt.Sprintf("%s-%d", sts.Name, i)
		if !cl.Enabled() || cl.Node != pod {
			fail("pod %s runs as node %q (cluster on: %v)", pod, cl.Node, cl.Enabled())
		}
		if !strings.HasSuffix(cl.Listen, fmt.Sprintf(":%d", clusterPort)) {
			fail("MCP_CLUSTER_LISTEN %s is not the container port cluster (%d)", cl.Listen, clusterPort)
		}
		if len(cl.Routes) != n {
			fail("%d routes for %d replicas: one route per pod", len(cl.Routes), n)
		}
		for j, r := range cl.Routes {
			u, _ := url.Parse(r)
			if want := fmt.Sprintf("%s-%d.%s:%d", sts.Name, j, m.headless.Name, clusterPort); u.Host != want {
				fail("route %d is %s: want %s (pod %s-%d through the headless Service)", j, u.Host, want, sts.Name, j)
			}
		}
		if cl.Replicas > n {
			fail("MCP_CLUSTER_REPLICAS %d is more than the %d pods", cl.Replicas, n)
		}
		if cl.TLSCert == "" {
			fail("routes without TLS: the cluster token would cross the network in clear")
		}
		for _, f := range []string{cl.TLSCert, cl.TLSKey, cl.TLSCA} {
			if f != "" && !mounts[filepath.Dir(f)] {
				fail("%s is not on a mounted volume", f)
			}
		}
		if cl.TLSKey != "" && !strings.HasPrefix(cl.TLSKey, cfg.DataDir+"/") {
			fail("the route key %s is outside the data dir %s: kernels (sandboxed out of the data dir only) could read it", cl.TLSKey, cfg.DataDir)
		}
	}
	return bad
}

// TestKubernetesClusterManifest: docs/kubernetes/statefulset-cluster.yaml
// decodes strictly, each pod's settings parse as the server reads them
// (as node <pod name>), replicas and routes agree, the routes name the
// pods through the headless Service, and the pod passes every check of
// the single-server manifest.
func TestKubernetesClusterManifest(t *testing.T) {
	t.Setenv(checkpointfile.SecretEnv, "the-secret's-value") // NB: parseCluster reads it from the environment
	m := readClusterManifest(t)
	for _, p := range checkClusterManifest(m, dockerfileFacts(t), benchmarkFigures(t)) {
		t.Error(p)
	}
}

// TestClusterManifestChecksCatchMistakes proves each check can fail.
func TestClusterManifestChecksCatchMistakes(t *testing.T) {
	t.Setenv(checkpointfile.SecretEnv, "the-secret's-value")
	img, bench := dockerfileFacts(t), benchmarkFigures(t)
	setValue := func(m *clusterManifest, name, value string) {
		c := &m.sts.Spec.Template.Spec.Containers[0]
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i] = corev1.EnvVar{Name: name, Value: value}
			}
		}
	}
	for _, mistake := range []struct {
		name, want string
		make       func(*clusterManifest)
	}{
		{"more replicas than routes", "3 routes for 4 replicas", func(m *clusterManifest) {
			four := int32(4)
			m.sts.Spec.Replicas = &four
		}},
		{"a route to a pod that is not there", "route 2 is", func(m *clusterManifest) {
			setValue(m, "MCP_CLUSTER_ROUTES", "nats://mcp-jupyter-0.mcp-jupyter-cluster:6222,nats://mcp-jupyter-1.mcp-jupyter-cluster:6222,nats://mcp-jupyter-3.mcp-jupyter-cluster:6222")
		}},
		{"node name a literal", "MCP_NODE_NAME must come from the pod's name", func(m *clusterManifest) {
			setValue(m, "MCP_NODE_NAME", "node")
		}},
		{"cluster token a literal", "MCP_CLUSTER_TOKEN must come from the Secret", func(m *clusterManifest) {
			setValue(m, "MCP_CLUSTER_TOKEN", "0123456789abcdef")
		}},
		{"ordered start", "Parallel", func(m *clusterManifest) { m.sts.Spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement }},
		{"not-ready pods unnamed", "publishNotReadyAddresses", func(m *clusterManifest) { m.headless.Spec.PublishNotReadyAddresses = false }},
		{"listen off the cluster port", "MCP_CLUSTER_LISTEN", func(m *clusterManifest) { setValue(m, "MCP_CLUSTER_LISTEN", "0.0.0.0:7222") }},
		{"routes in clear", "without TLS", func(m *clusterManifest) {
			c := &m.sts.Spec.Template.Spec.Containers[0]
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return strings.HasPrefix(e.Name, "MCP_CLUSTER_TLS_") })
		}},
		{"route key readable by kernels", "outside the data dir", func(m *clusterManifest) {
			setValue(m, "MCP_CLUSTER_TLS_KEY", "/home/mcp/tls.key")
		}},
		{"a bad setting", "do not parse", func(m *clusterManifest) { setValue(m, "MCP_CLUSTER_REPLICAS", "7") }},
		{"a single-server check", "as one server", func(m *clusterManifest) {
			m.sts.Spec.Template.Spec.TerminationGracePeriodSeconds = nil
		}},
	} {
		t.Run(mistake.name, func(t *testing.T) {
			m := readClusterManifest(t)
			if got := checkClusterManifest(m, img, bench); len(got) != 0 {
				t.Fatalf("the real manifest fails: %v", got)
			}
			mistake.make(&m)
			got := checkClusterManifest(m, img, bench)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, mistake.want) }) {
				t.Errorf("the mistake passed: want a problem naming %q, got %q", mistake.want, got)
			}
		})
	}
}

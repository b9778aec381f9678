package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestImageScriptsWiring checks `make image` / `make image-test` without
// building anything (that takes minutes; make image-test does it): the
// Makefile targets call the scripts under infra/image/, the scripts parse
// (bash -n, and the in-container probe with the kernels' python3), the build
// script hands the Dockerfile the base-image arguments it declares, the probe
// has every check the issue lists, image-test is not part of `make test`, and
// the made bases and rootfs stay out of git and out of the build context.
func TestImageScriptsWiring(t *testing.T) {
	read := func(path string) string {
		t.Helper()
		b, err := os.ReadFile("../../" + path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	mk := read("Makefile")
	for target, script := range map[string]string{"image": "infra/image/build.sh", "image-test": "infra/image/test.sh"} {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:[^\n]*\n((?:\t[^\n]*\n)+)`).FindStringSubmatch(mk)
		if m == nil {
			t.Errorf("the Makefile has no %s target", target)
			continue
		}
		if !strings.Contains(m[1], script) {
			t.Errorf("make %s does not run %s: %q", target, script, m[1])
		}
		if !regexp.MustCompile(`(?m)^\.PHONY:.*\b` + regexp.QuoteMeta(target) + `\b`).MatchString(mk) {
			t.Errorf("%s is not .PHONY", target)
		}
	}
	if m := regexp.MustCompile(`(?m)^test:([^\n]*)\n((?:\t[^\n]*\n)+)`).FindStringSubmatch(mk); m == nil || strings.Contains(m[0], "image") {
		t.Errorf("make test must not build or run the image (it takes minutes): %q", m)
	}

	for _, script := range []string{"infra/image/build.sh", "infra/image/test.sh"} {
		if out, err := exec.Command("bash", "-n", "../../"+script).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", script, err, out)
		}
		if fi, err := os.Stat("../../" + script); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable (%v)", script, err)
		}
	}
	probe := read("infra/image/probe.py")
	parse := exec.Command("/usr/bin/python3", "-c", "import ast, sys; ast.parse(sys.stdin.read(), 'probe.py')")
	parse.Stdin = strings.NewReader(probe)
	if out, err := parse.CombinedOutput(); err != nil {
		t.Errorf("infra/image/probe.py does not parse: %v\n%s", err, out)
	}

	// Every check the issue lists is a probe command test.sh runs.
	testSh := read("infra/image/test.sh")
	for _, check := range []string{"uid", "doctor", "stdio", "serve-drain", "after-restart"} {
		if !strings.Contains(probe, `cmd == "`+check+`"`) {
			t.Errorf("probe.py has no %s command", check)
		}
		if !regexp.MustCompile(`probe "\$c[12]" ` + regexp.QuoteMeta(check) + `\b`).MatchString(testSh) {
			t.Errorf("test.sh does not run the probe's %s check", check)
		}
	}
	for _, want := range []string{`"health"`, `"sigterm-drain"`, `"drain-finished"`, `"mcp-stdio-execute"`, `"volume-events"`, `"serve-uid"`} {
		if !strings.Contains(probe, want) {
			t.Errorf("probe.py reports no %s check", want)
		}
	}
	if !strings.Contains(testSh, "image-size") {
		t.Error("test.sh does not report the image's size")
	}

	// The build script gives the Dockerfile the base images it declares.
	build := read("infra/image/build.sh")
	df := read("Dockerfile")
	for _, arg := range regexp.MustCompile(`(?m)^ARG ([A-Z_]+IMAGE)=`).FindAllStringSubmatch(df, -1) {
		if !strings.Contains(build, "--build-arg "+arg[1]+"=") {
			t.Errorf("build.sh does not pass --build-arg %s (the Dockerfile's base image)", arg[1])
		}
	}
	for _, want := range []string{"--storage-driver", "--isolation chroot", "mmdebstrap", "docker build", "--format docker"} {
		if !strings.Contains(build, want) {
			t.Errorf("build.sh lacks %q", want)
		}
	}
	if !strings.Contains(read(".gitignore"), "/infra/image/.cache/") {
		t.Error(".gitignore does not keep infra/image/.cache (rootfs tarballs) out of git")
	}
	if !strings.Contains(read(".dockerignore"), "infra/image/.cache") {
		t.Error(".dockerignore does not keep infra/image/.cache out of the build context")
	}
}

package console

import (
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestOutputColoursMeetContrast: every text colour outputs.css gives an
// output (the ANSI palette, muted notes) has at least 4.5:1 contrast (WCAG
// AA) on the backgrounds it is drawn on, in the light and the dark scheme;
// and the default text has it on every ANSI background tint.
func TestOutputColoursMeetContrast(t *testing.T) {
	css, err := fs.ReadFile(New(Options{}).static, "outputs.css")
	if err != nil {
		t.Fatal(err)
	}
	text := string(css)
	dark := strings.Index(text, "@media (prefers-color-scheme: dark)")
	if dark < 0 {
		t.Fatal("outputs.css has no dark scheme")
	}
	schemes := map[string]map[string]string{"light": cssVars(text[:dark]), "dark": cssVars(text[dark:])}
	for name, v := range schemes {
		for _, bgName := range []string{"--ov-bg", "--ov-stderr-bg", "--ov-error-bg"} {
			bg := mustColour(t, v, bgName)
			fgs := []string{"--ov-fg", "--ov-muted"}
			for i := 0; i < 16; i++ {
				fgs = append(fgs, fmt.Sprintf("--ansi-%d", i))
			}
			for _, fgName := range fgs {
				if c := contrast(mustColour(t, v, fgName), bg); c < 4.5 {
					t.Errorf("%s scheme: %s on %s has contrast %.2f, want >= 4.5", name, fgName, bgName, c)
				}
			}
		}
		fg := mustColour(t, v, "--ov-fg")
		for i := 0; i < 16; i++ {
			bgName := fmt.Sprintf("--ansib-%d", i)
			if c := contrast(fg, mustColour(t, v, bgName)); c < 4.5 {
				t.Errorf("%s scheme: --ov-fg on %s has contrast %.2f, want >= 4.5", name, bgName, c)
			}
		}
	}
}

var cssVarPattern = regexp.MustCompile(`(--[a-z0-9-]+):\s*(#[0-9a-fA-F]{6})\s*;`)

func cssVars(block string) map[string]string {
	m := map[string]string{}
	for _, g := range cssVarPattern.FindAllStringSubmatch(block, -1) {
		m[g[1]] = g[2]
	}
	return m
}

func mustColour(t *testing.T, vars map[string]string, name string) [3]float64 {
	t.Helper()
	hex, ok := vars[name]
	if !ok {
		t.Fatalf("outputs.css does not set %s in every scheme", name)
	}
	var c [3]float64
	for i := range c {
		n, err := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, hex, err)
		}
		c[i] = float64(n)
	}
	return c
}

func luminance(c [3]float64) float64 {
	var l [3]float64
	for i, v := range c {
		v /= 255
		if v <= 0.03928 {
			l[i] = v / 12.92
		} else {
			l[i] = math.Pow((v+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

func contrast(a, b [3]float64) float64 {
	la, lb := luminance(a), luminance(b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

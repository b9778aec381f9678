package jupyterapi

import (
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// specModel is jupyter_server's kernelspec model. NB: the spec's env is
// not shown: a kernelspec's environment may hold credentials, and a
// frontend starts kernels here, never from the spec itself.
type specModel struct {
	Name      string            `json:"name"`
	Spec      specBody          `json:"spec"`
	Resources map[string]string `json:"resources"`
}

type specBody struct {
	Argv          []string       `json:"argv"`
	DisplayName   string         `json:"display_name"`
	Language      string         `json:"language"`
	InterruptMode string         `json:"interrupt_mode"`
	Metadata      map[string]any `json:"metadata"`
}

// model is spec as GET /api/kernelspecs shows it: its resources are
// kernel.js, kernel.css and the logo-* files of its directory, each
// named by its URL under /kernelspecs/.
func (spec KernelSpec) model() specModel {
	m := specModel{Name: spec.Name, Resources: map[string]string{}, Spec: specBody{
		Argv: spec.Argv, DisplayName: spec.DisplayName, Language: spec.Language,
		InterruptMode: spec.InterruptMode, Metadata: spec.Metadata,
	}}
	if m.Spec.Argv == nil {
		m.Spec.Argv = []string{}
	}
	if m.Spec.InterruptMode == "" {
		m.Spec.InterruptMode = "signal"
	}
	if m.Spec.Metadata == nil {
		m.Spec.Metadata = map[string]any{}
	}
	base := "/kernelspecs/" + url.PathEscape(spec.Name) + "/"
	root, err := os.OpenRoot(spec.ResourceDir)
	if err != nil {
		return m // NB: an unreadable dir has no resources
	}
	defer root.Close()
	entries, _ := fs.ReadDir(root.FS(), ".")
	for _, e := range entries {
		name := e.Name()
		// NB: listed only if served: a regular file, or a symlink to one
		// inside the directory (os.Root refuses one leading out).
		if fi, err := root.Stat(name); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		switch {
		case !isSpecResource(name):
		case strings.HasPrefix(name, "logo-"):
			m.Resources[strings.TrimSuffix(name, filepath.Ext(name))] = base + url.PathEscape(name)
		default:
			m.Resources[name] = base + url.PathEscape(name)
		}
	}
	return m
}

// isSpecResource reports whether file of a kernelspec's directory is one
// of its resources (what model lists): kernel.js, kernel.css, logo-*.
// Only those are served: the directory holds kernel.json too, whose env
// may hold credentials (not shown by /api/kernelspecs either).
func isSpecResource(file string) bool {
	return file == "kernel.js" || file == "kernel.css" || strings.HasPrefix(file, "logo-") && !strings.Contains(file, "/")
}

func (s *Server) kernelSpecs(w http.ResponseWriter, r *http.Request) {
	specs, err := s.opts.Kernels.KernelSpecs(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	all := make(map[string]specModel, len(specs.Specs))
	for _, spec := range specs.Specs {
		all[spec.Name] = spec.model()
	}
	writeJSON(w, http.StatusOK, map[string]any{"default": specs.Default, "kernelspecs": all})
}

// findSpec is the kernelspec named name, or a 404.
func (s *Server) findSpec(r *http.Request, name string) (KernelSpec, error) {
	specs, err := s.opts.Kernels.KernelSpecs(r.Context())
	if err != nil {
		return KernelSpec{}, err
	}
	i := slices.IndexFunc(specs.Specs, func(k KernelSpec) bool { return k.Name == name })
	if i < 0 {
		return KernelSpec{}, Errorf(http.StatusNotFound, "Kernel spec %s not found", name)
	}
	return specs.Specs[i], nil
}

func (s *Server) kernelSpec(w http.ResponseWriter, r *http.Request) {
	spec, err := s.findSpec(r, r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, spec.model())
}

// kernelSpecResource serves a resource of the kernelspec's directory (its
// logos, kernel.js, kernel.css: isSpecResource; anything else, kernel.json
// included, is a 404). The file is opened through an os.Root on that
// directory: "..", absolute paths and symlinks leading out of it are
// refused by the kernel's own path walk, not by string checks.
func (s *Server) kernelSpecResource(w http.ResponseWriter, r *http.Request) {
	spec, err := s.findSpec(r, r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	file := r.PathValue("file")
	notFound := Errorf(http.StatusNotFound, "Kernel spec %s has no resource %q", spec.Name, file)
	if !isSpecResource(file) || !fs.ValidPath(file) {
		s.fail(w, r, notFound)
		return
	}
	root, err := os.OpenRoot(spec.ResourceDir)
	if err != nil {
		s.fail(w, r, notFound)
		return
	}
	defer root.Close()
	f, err := root.Open(file)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Info("jupyter api: kernelspec resource refused", "spec", spec.Name, "file", file, "err", err)
		}
		s.fail(w, r, notFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		s.fail(w, r, notFound)
		return
	}
	ctype := mime.TypeByExtension(path.Ext(file))
	if ctype == "" {
		ctype = "text/plain"
	}
	w.Header().Set("Content-Type", ctype)
	if strings.HasSuffix(strings.ToLower(file), ".png") {
		w.Header().Set("Cache-Control", "max-age=2592000") // NB: 30 days, as jupyter_server
	}
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

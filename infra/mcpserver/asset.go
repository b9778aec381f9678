package mcpserver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// AssetScheme is the URI scheme of stored outputs: asset://<sha256>.
const AssetScheme = "asset://"

// AssetOrigin says what produced an asset: the kernel, the execution and the
// index of the output in the reply that linked it.
type AssetOrigin struct {
	KernelID    string `json:"kernel_id,omitempty"`
	ExecutionID string `json:"execution_id,omitempty"`
	OutputIndex int    `json:"output_index"`
}

// ErrAssetNotFound: no asset has that sum (never stored, or collected after
// its leases expired). AssetStore.Get wraps it.
var ErrAssetNotFound = errors.New("asset not found")

// errBadAssetID: the URI does not end in a sha256.
var errBadAssetID = errors.New("not an asset id")

// AssetStore keeps outputs too large or too rich for a tool reply. The
// server (cmd/mcp-jupyter) passes actors/lease, so every store is recorded
// with a lease and every read renews it. Methods are called concurrently.
//
// Put stores data durably and returns its sha256 in lowercase hex. Get
// returns the bytes and MIME type of sum; an unknown or collected sum is an
// error that says so.
type AssetStore interface {
	Put(ctx context.Context, data []byte, mime string, o AssetOrigin) (string, error)
	Get(ctx context.Context, sum string) ([]byte, string, error)
}

// assetStore is the renderer's view of the store: Options.Assets when set,
// else content-addressed files in dir (<dir>/<sha256> and a
// <dir>/<sha256>.mime sidecar, unleased: tests and embedders without a log).
type assetStore struct {
	dir     string
	managed AssetStore
	origin  AssetOrigin
}

// putTimeout bounds one store through the managed store (a durable append).
const putTimeout = 30 * time.Second

// errNoAssetDir is returned when an output has to be stored but no AssetDir
// was configured.
var errNoAssetDir = errors.New("mcpserver: no asset directory configured")

// AssetURI returns the URI of the asset with the given content hash.
func AssetURI(sum string) string { return AssetScheme + sum }

// validSum reports whether s is a sha256 in lowercase hex: the only names the
// store hands out, so the only ones it will open (no path traversal).
func validSum(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// put stores data with its MIME type and returns its URI. Storing the same
// bytes twice is a no-op.
func (a assetStore) put(data []byte, mime string) (string, error) {
	if a.managed != nil {
		ctx, cancel := context.WithTimeout(context.Background(), putTimeout)
		defer cancel()
		sum, err := a.managed.Put(ctx, data, mime, a.origin)
		if err != nil {
			return "", fmt.Errorf("store asset: %w", err)
		}
		return AssetURI(sum), nil
	}
	if a.dir == "" {
		return "", errNoAssetDir
	}
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	path := filepath.Join(a.dir, sum)
	if _, err := os.Stat(path); err == nil {
		return AssetURI(sum), nil
	}
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return "", fmt.Errorf("create asset dir: %w", err)
	}
	// NB: the sidecar is written first, so a data file never exists
	// without its MIME type.
	if err := writeAtomic(path+".mime", []byte(mime)); err != nil {
		return "", err
	}
	if err := writeAtomic(path, data); err != nil {
		return "", err
	}
	return AssetURI(sum), nil
}

// get returns the stored bytes and MIME type of sum.
func (a assetStore) get(sum string) ([]byte, string, error) {
	return a.getCtx(context.Background(), sum)
}

func (a assetStore) getCtx(ctx context.Context, sum string) ([]byte, string, error) {
	if !validSum(sum) {
		return nil, "", fmt.Errorf("asset %q: %w: give a sha256 (64 lowercase hex characters)", sum, errBadAssetID)
	}
	if a.managed != nil {
		return a.managed.Get(ctx, sum)
	}
	if a.dir == "" {
		return nil, "", errNoAssetDir
	}
	path := filepath.Join(a.dir, sum)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("asset %s: %w (never stored, or collected)", sum, ErrAssetNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read asset %s: %w", sum, err)
	}
	mime := "application/octet-stream"
	if m, err := os.ReadFile(path + ".mime"); err == nil && len(m) > 0 {
		mime = strings.TrimSpace(string(m))
	}
	return data, mime, nil
}

func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("create asset file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write asset %s: %w", filepath.Base(path), err)
	}
	return nil
}

// isTextMIME reports whether an asset of this type is served as text.
func isTextMIME(mime string) bool {
	return strings.HasPrefix(mime, "text/") || strings.HasSuffix(mime, "+json") ||
		strings.HasSuffix(mime, "+xml") || mime == "application/json" || mime == "application/javascript"
}

// resourceTemplate is asset://{sha256}, served from the store.
func (a assetStore) resourceTemplate() server.ServerResourceTemplate {
	tmpl := mcp.NewResourceTemplate(AssetScheme+"{sha256}", "asset",
		mcp.WithTemplateDescription("An output stored by mcp-jupyter: the full text of a truncated output, "+
			"an HTML/SVG/Plotly display or a large image. The URIs appear in execute and get_execution replies."))
	return server.ServerResourceTemplate{Template: tmpl, Handler: a.read}
}

func (a assetStore) read(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	sum := strings.TrimPrefix(req.Params.URI, AssetScheme)
	data, mime, err := a.getCtx(ctx, sum)
	if errors.Is(err, ErrAssetNotFound) || errors.Is(err, errBadAssetID) {
		// NB: wraps server.ErrResourceNotFound: "not found", not a server
		// fault. mcp-go v1.2.1 still sends every template handler's error
		// with code -32603; the message is what tells the agent.
		return nil, fmt.Errorf("%w: %w; use a URI from an execute, get_execution or list_assets reply", server.ErrResourceNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w; use a URI from an execute or get_execution reply", err)
	}
	if isTextMIME(mime) && utf8.Valid(data) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: mime, Text: string(data)}}, nil
	}
	return []mcp.ResourceContents{mcp.BlobResourceContents{URI: req.Params.URI, MIMEType: mime,
		Blob: base64.StdEncoding.EncodeToString(data)}}, nil
}

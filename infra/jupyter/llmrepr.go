package jupyter

// MIMELLMText is the MIME type of a representation written for language
// models (the `text/llm+plain` of the repr_llm convention: an object's
// `_repr_llm_`, or a `_repr_mimebundle_` entry). Front ends that do not know
// it ignore it, as they ignore any MIME type they cannot render.
const MIMELLMText = "text/llm+plain"

// LLMSummaryMetadata is the key, in a display's metadata for MIMELLMText,
// that the kernel's own pandas summaries set to true: the text is a summary
// of a larger display (a DataFrame's shape, dtypes and first rows), so the
// server still links the display's HTML. A text/llm+plain without it is the
// object's own account of itself and replaces its other forms.
// NB: must not change (the server reads it from what kernels send).
const LLMSummaryMetadata = "io.mcp-jupyter/summary"

// llmReprPrelude registers, in an ipykernel kernel that withIOPubHWM wraps,
// an IPython formatter for MIMELLMText, with printers for pandas DataFrame
// and Series that say what an agent needs to work with one: its shape, its
// columns with their dtypes, its index when not a plain range, and its first
// rows. Objects keep their say: a `_repr_llm_` method is honoured, a
// `_repr_mimebundle_` offering text/llm+plain wins, and a formatter for the
// type that a user registers later replaces ours.
//
// Why here, in the launch wrapper, and not elsewhere:
//   - A silent execute sent once the kernel is ready would be traffic the
//     kernel actor records and the count probe must account for, would race
//     an agent's first execution, and would have to be repeated on every
//     restart and relaunch. The wrapper runs in every kernel the launcher
//     starts — first start, restart, auto-restore relaunch, pool — before
//     the kernel answers anything, and sends no message at all.
//   - An IPython startup file (IPYTHONDIR, exec_lines on the command line)
//     would replace the user's own profile or configuration; patching
//     IPKernelApp.init_shell adds to it and leaves both alone.
//   - A re-attached kernel is the same process, so it keeps what its launch
//     registered. A kernel launched by an older server, or by a kernelspec
//     that is not `-m ipykernel_launcher`, has no formatter: its displays
//     come back as before (text/plain, HTML linked).
//
// The printers are registered by name (for_type_by_name): nothing imports
// pandas until the user's code has made a DataFrame. They never raise (a
// failing printer yields no text/llm+plain, and the display falls back to
// text/plain), they read only O(columns) metadata plus head(5), never a
// whole column, and their text is bounded (100 column names, 20 columns of
// rows, 40 characters a cell). The server still applies its own output
// budget to what they send. Every name the wrapper defines starts with
// _mcp_ and lives in the wrapper's module, not in the user's namespace, so
// checkpoints (which serialize the user's variables) never see it. It holds
// no secret of the server's: it is constant text.
const llmReprPrelude = `def _mcp_llm_reprs():
    summary = {"io.mcp-jupyter/summary": True}
    def names(xs):
        return ", ".join(str(x)[:40] for x in xs)
    def columns_text(df):
        groups = {}
        for name, dtype in df.dtypes.items():
            groups.setdefault(str(dtype), []).append(name)
        left, parts = 100, []
        for dtype, cols in groups.items():
            shown = cols[:max(left, 0)]
            left -= len(shown)
            more = " \u2026 %d more" % (len(cols) - len(shown)) if len(cols) > len(shown) else ""
            parts.append("%s (%d): %s%s" % (dtype, len(cols), names(shown), more))
        return "columns by dtype: " + "; ".join(parts)
    def index_text(pd, index):
        if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
            return None
        return "index: %s of %s%s" % (type(index).__name__, index.dtype, " named " + names(index.names) if any(n is not None for n in index.names) else "")
    def frame_text(df):
        import pandas as pd
        rows, cols = df.shape
        out = ["pandas.DataFrame: %d rows \u00d7 %d columns" % (rows, cols), columns_text(df)]
        index = index_text(pd, df.index)
        if index:
            out.append(index)
        with pd.option_context("display.max_colwidth", 40, "display.width", 1000):
            out.append(("first 5 rows:\n" if rows > 5 else "rows:\n") + df.head(5).to_string(max_cols=20))
        return "\n".join(out), summary
    def series_text(s):
        import pandas as pd
        name = "" if s.name is None else " " + repr(s.name)[:40]
        out = ["pandas.Series%s: %d values, dtype %s" % (name, len(s), s.dtype)]
        index = index_text(pd, s.index)
        if index:
            out.append(index)
        with pd.option_context("display.max_colwidth", 40):
            out.append(("first 5 values:\n" if len(s) > 5 else "values:\n") + s.head(5).to_string())
        return "\n".join(out), summary
    def guarded(printer):
        def safe(obj):
            try:
                return printer(obj)
            except Exception:
                return None
        return safe
    def register(shell):
        from IPython.core.formatters import BaseFormatter
        from traitlets import ObjectName, Unicode
        class LLMPlainFormatter(BaseFormatter):
            """text/llm+plain: what a language model should read (mcp-jupyter)."""
            format_type = Unicode("text/llm+plain")
            print_method = ObjectName("_repr_llm_")
        formatters = shell.display_formatter.formatters
        llm = formatters.get("text/llm+plain")
        if llm is None:
            llm = formatters["text/llm+plain"] = LLMPlainFormatter(parent=shell.display_formatter)
        llm.for_type_by_name("pandas.core.frame", "DataFrame", guarded(frame_text))
        llm.for_type_by_name("pandas.core.series", "Series", guarded(series_text))
    return register
try:
    from ipykernel.kernelapp import IPKernelApp as _mcp_app
    _mcp_init_shell = _mcp_app.init_shell
    def _mcp_init_shell_with_llm(self):
        _mcp_init_shell(self)
        try:
            if self.shell is not None:
                _mcp_llm_reprs()(self.shell)
        except Exception:
            pass
    _mcp_app.init_shell = _mcp_init_shell_with_llm
except Exception:
    pass
`

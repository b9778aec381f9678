# Regenerates dataframe_100000x50.json (BenchmarkRenderDataFrame) from the repository root:
#   /usr/bin/python3 infra/mcpserver/testdata/make_dataframe_fixture.py
# It runs the kernels' own text/llm+plain formatter (infra/jupyter/llmrepr.go) on a real DataFrame.
import json
src = open("infra/jupyter/llmrepr.go").read()
prelude = src.split("const llmReprPrelude = `", 1)[1].split("`", 1)[0]
exec(prelude)
from IPython.core.interactiveshell import InteractiveShell
import pandas as pd, numpy as np
sh = InteractiveShell.instance()
_mcp_llm_reprs()(sh)
df = pd.DataFrame(np.random.default_rng(7).random((100_000, 50)), columns=[f"col{i}" for i in range(50)])
df["col1"] = np.arange(100_000, dtype="int64")
df["col2"] = pd.Categorical(["red", "green"] * 50_000)
data, md = sh.display_formatter.format(df)
json.dump({"data": data, "metadata": md, "execution_count": 1}, open("infra/mcpserver/testdata/dataframe_100000x50.json", "w"), indent=1, ensure_ascii=False)

import subprocess
import sys


def test_import_loads_no_runtime_and_no_plugin():
    code = (
        "import sys, gptoss_hub, gptoss_hub.plugins as p;"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'llama_cpp') if m in sys.modules];"
        "print(heavy, p._PLUGINS.registry is None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True"


def test_harmony_layer_imports_no_torch():
    code = (
        "import sys, gptoss_hub as gh; gh.harmony.render([{'role': 'user', 'content': 'hi'}]);"
        "gh.harmony.parse([200005]); print([m for m in ('torch', 'transformers') if m in sys.modules])"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    )


def test_public_names_resolve():
    import gptoss_hub as gh

    for name in gh.__all__:
        assert getattr(gh, name) is not None, name
    assert callable(gh.load) and callable(gh.plan) and callable(gh.harmony.render)

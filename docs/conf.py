"""Sphinx configuration for the arbf documentation.

Build: ``nox -s docs`` or ``sphinx-build -W --keep-going -b html docs docs/_build/html``.

Math is rendered by MathJax 3 in the browser.  By default it is loaded from Sphinx's CDN
address; to read the pages offline, point ``ARBF_DOCS_MATHJAX`` at a local copy of
MathJax 3's ``tex-chtml.js`` (for example from ``npm pack mathjax@3``) before building.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from sphinx.util import logging as sphinx_logging

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import arbf  # noqa: E402

project = "arbf"
author = "the arbf developers"
copyright = "2026, the arbf developers"
release = arbf.__version__
version = re.sub(r"(\.dev\d*|[ab]\d+|rc\d+)$", "", release)

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx.ext.doctest",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", ".gitignore"]
templates_path = ["_templates"]
html_static_path = ["_static"]

# -- MyST -------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3
# README/CHANGELOG are included from the repository root; their relative links are not
# pages of this site.
suppress_warnings = ["myst.xref_missing"]

# -- autodoc / autosummary / numpydoc --------------------------------------------------
autosummary_generate = True
# ``arbf.torch`` and ``arbf.jax`` are documented from the real modules, so the docs
# environment needs PyTorch and JAX (``nox -s docs`` installs them; a mock cannot stand in,
# ``arbf.jax`` builds a namespace from a JAX array at import).
autosummary_imported_members = True
autodoc_typehints = "none"  # the numpydoc "Parameters" sections carry the types
add_module_names = False
# Class pages list their own methods (templates/autosummary/class.rst), not those
# inherited from torch.nn.Module or scikit-learn's BaseEstimator.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# Every cross-reference must resolve (a broken ``:func:`` is an error under ``-W``), except
# those into other projects: no intersphinx, because the build must work offline.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(sklearn|numpy|np|scipy|torch|nn|jax|dask|cupy|array_api_strict)(\..*)?"),
    # private helpers named in public docstrings have no page of their own
    (r"py:.*", r"arbf(\.\w+)*\._\w+.*"),
]

# -- doctest (``{doctest}`` blocks in the guides; docstrings run under pytest) ---------
doctest_global_setup = """
import numpy as np
import arbf
"""

# -- math ---------------------------------------------------------------------------------
_mathjax_local = os.environ.get("ARBF_DOCS_MATHJAX")
if _mathjax_local:
    mathjax_path = _mathjax_local
mathjax3_config = {
    "tex": {
        "macros": {
            "argmin": r"\operatorname*{arg\,min}",
            "argmax": r"\operatorname*{arg\,max}",
            "softmax": r"\operatorname{softmax}",
            "entmax": r"\operatorname{entmax}_{1.5}",
            "R": r"\mathbb{R}",
        }
    }
}

# -- HTML -------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"arbf {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False
# Pages without sub-pages get no (empty) left sidebar.
html_sidebars = {
    page: [] for page in ("getting_started", "theory", "reproduce", "benchmarks", "changelog")
}
html_css_files = ["arbf.css"]


# -- class pages: the class's own API, not what it inherits from other projects ------------
def _foreign_inherited() -> dict[str, list[str]]:
    """For each public class, the members it inherits from classes outside arbf.

    ``templates/autosummary/class.rst`` leaves them out (``torch.nn.Module``'s fifty
    methods, scikit-learn's ``BaseEstimator`` plumbing) but keeps what arbf's own base
    classes provide (``fit`` of a shared base, ``get_params`` of the fallback base).
    """
    import importlib
    import inspect

    out: dict[str, list[str]] = {}
    for modname in ("arbf", "arbf.datasets", "arbf.torch", "arbf.jax", "arbf._drivers.rbf"):
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        for name in getattr(mod, "__all__", []):
            cls = getattr(mod, name, None)
            if not inspect.isclass(cls):
                continue
            foreign = []
            for member in dir(cls):
                owner = next((c for c in cls.__mro__ if member in vars(c)), None)
                if owner is not None and not owner.__module__.startswith("arbf"):
                    foreign.append(member)
            out[f"{cls.__module__}.{name}"] = out[f"{modname}.{name}"] = foreign
    return out


autosummary_context = {"foreign_inherited": _foreign_inherited()}


# -- every public name must be on the API page ---------------------------------------------
def _check_api_coverage(app, env, docnames):
    """Warn (an error under ``-W``) for a name of ``arbf.__all__`` missing from api.rst."""
    text = (HERE / "api" / "index.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\s{3,}(\w+)\s*$", text, flags=re.M))
    logger = sphinx_logging.getLogger("arbf.docs")
    for name in sorted(set(arbf.__all__) - listed):
        logger.warning("public name arbf.%s is not on the API reference page", name)


def _private_sibling(app, env, node, contnode):
    """Accept ``:func:`name``` in a docstring when ``name`` is a private sibling.

    Public functions live in private modules (``arbf._drivers.rbf.anneal``); their
    docstrings may name a helper of the same module (``default_schedule``) that has no
    page.  Such a reference renders as code without a link.  A bare name that is *not* in
    the docstring's module still warns (a typo, or a helper that was renamed).
    """
    import importlib

    target = node.get("reftarget", "")
    source = node.source or ""
    if node.get("refdomain") != "py" or "." in target or "docstring of " not in source:
        return None
    owner = source.rsplit("docstring of ", 1)[1].split(":")[0]
    parts = owner.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        if hasattr(module, target):
            return contnode
        break
    return None


def setup(app):
    app.connect("env-before-read-docs", _check_api_coverage)
    app.connect("missing-reference", _private_sibling)
    return {"parallel_read_safe": True}

"""Package layout that pyproject.toml cannot say on its own.

`data/` (UCS table, prompt templates, example labels) stays at the top of the repository and
is installed as the package `indexer.data`, so the wheel, the sdist and editable installs all
carry it and the code reads it with importlib.resources. A mapped package is outside what
`[tool.setuptools.packages.find]` can discover, hence the list here. Everything else about
the project is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

CODE = find_namespace_packages(include=["indexer", "indexer.*", "search", "search.*"])
DATA = ["indexer.data"] + ["indexer.data." + p for p in find_namespace_packages(where="data")]

setup(
    packages=CODE + DATA,
    package_dir={"indexer.data": "data"},
    package_data={
        **{p: ["*.csv", "*.txt", "*.md", "*.json"] for p in DATA},
        "search.web": ["templates/*", "static/*"],
    },
)

"""The data the program reads at run time: UCS taxonomy, prompt templates, example labels.

This folder stays at the top of the repository and is installed as the package
`indexer.data` (see setup.py), so that wheels, sdists and editable installs all carry it.
Read it through `indexer.resources`, never by a path beside the source tree.
"""

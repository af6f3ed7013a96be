"""mytool: a distribution installed with `pip install --target PLUGINS/mytool`.
The plugin directory has no __init__.py (path layout); its callables are named
by mytool-1.0.dist-info/entry_points.txt."""

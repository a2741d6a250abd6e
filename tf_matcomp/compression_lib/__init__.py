"""graph_compression's `compression_lib` module names on tf_matcomp, for porting by import root.

    from graph_compression.compression_lib import compression_op      # before
    from tf_matcomp.compression_lib import compression_op              # after

Each module holds the names of graph_compression 0.0.4's module of the same name (and
upstream's `keras_layers/layers.py`), as aliases of and thin adapters over tf_matcomp's own
classes: the registry (`tf_matcomp.compressors.registry`), `tf_matcomp.compression_op` and
`tf_matcomp.compression_wrapper`. What deliberately differs is listed in the README section
"Porting from graph_compression".
"""

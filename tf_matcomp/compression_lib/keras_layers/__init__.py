"""graph_compression's (upstream) `compression_lib/keras_layers`: Keras layers with
`compression_obj=` (see `layers`)."""

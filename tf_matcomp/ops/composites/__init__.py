"""Pure-TF twins of the native ops: the XLA/TPU path, the reference, and the fallback.

Every function here uses only TF ops that XLA compiles, so it runs under
`tf.function(jit_compile=True)`.
"""

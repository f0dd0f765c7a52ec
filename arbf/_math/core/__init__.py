"""The pure Array API core: the reference implementation of every operation.

Nothing here dispatches to a compiled kernel or a backend-native function (those are in
:mod:`arbf._math.kernels`, chosen by :mod:`arbf._math.seam`), validates input, or
synchronises with the host: these functions take validated arrays and their namespace
``xp``, walk the rows in chunks (:mod:`arbf._chunking`), and use only the standard.  A
native primitive enters only as an argument (``segment_sum=``), passed by the seam.
So each function here can be tested as *the* reference.
"""

"""What the library says to its user: ``verbose`` progress lines and warnings.

A library configures no logging: the ``"arbf"`` logger only has a
:class:`logging.NullHandler`.  ``verbose=True`` output is *printed* to standard output
at the time of the call, as scikit-learn's estimators print it; without ``verbose`` the
same lines go to the ``"arbf"`` logger at DEBUG level (silent unless the application
configures logging).

:class:`ConvergenceWarning` subclasses :class:`sklearn.exceptions.ConvergenceWarning`
when scikit-learn is installed, so warning filters and ``pytest.warns`` written for
scikit-learn catch it.  scikit-learn is imported only when the class is first needed
(importing it costs most of a second), never by ``import arbf``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from typing import Any

__all__ = ["convergence_warning", "emit", "logger", "user_stacklevel"]

logger = logging.getLogger("arbf")
logger.addHandler(logging.NullHandler())


def emit(verbose: bool, msg: str, *args: Any) -> None:
    """Print ``msg % args`` when ``verbose`` (to the current ``sys.stdout``), else log it
    at DEBUG level on the ``"arbf"`` logger."""
    if verbose:
        print(msg % args if args else msg, flush=True)
    else:
        logger.debug(msg, *args)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel() -> int:
    """The ``stacklevel`` that attributes a warning raised by the caller of this function
    to the first frame outside the ``arbf`` package: the user's line, however many
    library frames (estimator, driver, validation) lie between."""
    frame = sys._getframe(1)  # the function that will call warnings.warn
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


_lock = threading.Lock()
_classes: dict[str, type[Warning]] = {}


def convergence_warning() -> type[Warning]:
    """The :class:`arbf.ConvergenceWarning` class (created on first use).

    Its base is scikit-learn's ``ConvergenceWarning`` when scikit-learn is installed,
    else :class:`UserWarning`.  It pickles as ``arbf.ConvergenceWarning``.
    """
    cls = _classes.get("ConvergenceWarning")
    if cls is None:
        with _lock:
            cls = _classes.get("ConvergenceWarning")
            if cls is None:
                base: type[Warning] = UserWarning
                if importlib.util.find_spec("sklearn") is not None:
                    try:
                        from sklearn import exceptions

                        base = exceptions.ConvergenceWarning
                    except ImportError:  # pragma: no cover - a broken install
                        base = UserWarning
                cls = type(
                    "ConvergenceWarning",
                    (base,),
                    {
                        "__module__": "arbf",
                        "__doc__": (
                            "Warned when K-Means finds fewer distinct clusters than asked "
                            "for, or an iteration stops early.\n\nA subclass of "
                            "scikit-learn's ``ConvergenceWarning`` when scikit-learn is "
                            "installed."
                        ),
                    },
                )
                _classes["ConvergenceWarning"] = cls
    return cls

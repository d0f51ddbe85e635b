"""telem: the Python client of telemd (standard library only, Python 3.11).

    import telem
    with telem.Client("unix:./telem-data/telemd.sock", profile="p1", script="exec") as c:
        c.trade("BTC-USD", "buy", 0.25, 64000.5, 64210.0, 52.375, fees=1.2, trade_id="t-1")
        c.metric("equity", 10250.75)

Client ships records from a background thread and never loses one to a telemd restart (it
retries the same numbered batch until telemd acknowledges it). The compatibility layer
(telem.compat: TelemetryStorage, TelemetryManager) has the shape of the old MySQL library.
"""

from .client import DEFAULT_ENDPOINT, Client, ClientClosed, TelemError, parse_endpoint
from .lineproto import InvalidRecord

__version__ = "0.1.0"
__all__ = ["Client", "TelemError", "ClientClosed", "InvalidRecord", "DEFAULT_ENDPOINT",
           "parse_endpoint", "TelemetryStorage", "TelemetryManager"]


def __getattr__(name):
    # The compatibility layer loads on first use, keeping `import telem` light.
    if name in ("TelemetryStorage", "TelemetryManager"):
        from . import compat
        return getattr(compat, name)
    raise AttributeError("module 'telem' has no attribute %r" % name)

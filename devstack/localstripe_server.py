"""Run localstripe with its state kept where the stack says, or only in memory.

localstripe pickles its whole store to the fixed path `/tmp/localstripe.pickle` after every write.
Two instances on one machine (a developer's run beside the test suite, or two test workers) then
overwrite each other's state, and one can start by reading a file the other is half-way through
writing. This launcher points the store at `--state FILE` (written to a temporary file and renamed,
so a reader never sees half a file) or, without `--state`, keeps it in memory only, as a throwaway
server for tests should. Everything else is localstripe's own `server.start()`.

Run it as `python -m devstack.localstripe_server --port P [--state FILE] [--from-scratch]`.
"""

import argparse
import os
import pickle
import sys


def keep_state_in(path):
    """Make localstripe's store load from and save to `path` (None: never touch the disk)."""
    from localstripe import resources

    def load(store):
        if path and os.path.exists(path):
            with open(path, "rb") as fh:
                saved = pickle.load(fh)  # nosec B301 - localstripe's own state, written by dump() below
            store.clear()
            store.update(saved)

    def dump(store):
        if path:
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                pickle.dump(store, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump


def main(argv=None):
    """Serve localstripe on `--port` with the state file of `--state`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state")
    parser.add_argument("--from-scratch", action="store_true")
    args = parser.parse_args(argv)
    keep_state_in(args.state)
    from localstripe import server

    # localstripe's start() reads its own arguments from sys.argv.
    sys.argv = [sys.argv[0], "--port", str(args.port)] + (["--from-scratch"] if args.from_scratch else [])
    server.start()


if __name__ == "__main__":
    main()

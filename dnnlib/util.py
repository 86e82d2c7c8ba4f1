"""Small helpers shared by the command-line scripts and the library: config
dicts, user-facing errors, seed lists, run directories, logging, atomic file
writes, the download cache and URL opening."""

import argparse
import contextlib
import ctypes
import glob
import hashlib
import io
import numbers
import os
import re
import socket
import sys
import time
import traceback
import uuid
import urllib.parse

import requests
import tqdm

# ----------------------------------------------------------------------------
# Config dicts and errors.


class EasyDict(dict):
    """A dict whose keys can also be read, written and deleted as attributes,
    which keeps nested configs readable (cfg.G_args.fmaps)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            # AttributeError keeps hasattr(), getattr(default) and copy working.
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None


class UserError(Exception):
    """A problem the user can fix (bad argument, missing file, no network).

    The message is one line saying what is wrong and what to do; cli_main()
    prints it without a traceback.
    """


# OSErrors that almost always come from a path the user typed.
_USER_INPUT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def _describe_os_error(err):
    """One-line '<reason>: <path>' text for an OSError."""
    if err.strerror and err.filename is not None:
        return f'{err.strerror}: {err.filename}'
    return str(err)


def keep_freed_memory():
    """Make glibc keep freed memory for reuse instead of handing large blocks back to the system.

    By default every allocation above 32 MiB (one activation tensor of a batch at 256x256) is a fresh mmap whose
    pages the kernel zero-fills on first touch, and every free unmaps it again: on a CPU that costs as much as the
    arithmetic of many layers (about 1.15x on generation, docs/performance.md). The price is a process that
    keeps its peak memory until it exits. No-op where glibc's mallopt is not available.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
    libc.mallopt(m_mmap_max, 0)
    libc.mallopt(m_trim_threshold, 2**31 - 1)


def cli_main(main_fn, *args, **kwargs):
    """Run main_fn(*args, **kwargs) as a command-line entry point.

    The process keeps freed memory for reuse (`keep_freed_memory()`). User
    mistakes end the process with a one-line 'error: ...' on stderr and exit
    code 1, Ctrl-C with exit code 130; any other exception is a bug and
    propagates with its traceback.
    """
    keep_freed_memory()
    try:
        return main_fn(*args, **kwargs)
    except (KeyboardInterrupt, UserError, *_USER_INPUT_OS_ERRORS) as err:
        # Flush first so the message appears after everything already printed.
        sys.stdout.flush()
        print(one_line_ending(err), file=sys.stderr)
        sys.exit(130 if isinstance(err, KeyboardInterrupt) else 1)


def one_line_ending(err):
    """The line that tells how a run ended for an interruption ('interrupted') or a user's mistake ('error: ...');
    None for any other exception, which is a bug and keeps its traceback."""
    if isinstance(err, KeyboardInterrupt):
        return 'interrupted'
    if isinstance(err, UserError):
        return f'error: {err}'
    if isinstance(err, _USER_INPUT_OS_ERRORS):
        return f'error: {_describe_os_error(err)}'
    return None


# ----------------------------------------------------------------------------
# Seed lists.

_MAX_SEED = 2**32 - 1  # numpy.random.RandomState seeds must fit in uint32
_SEED_ITEM_RE = re.compile(r'([0-9]+)(?:\s*-\s*([0-9]+))?')
_SEED_LIST_HELP = "expected non-negative integers and inclusive ranges separated by commas, e.g. '1-3,7,10-12'"


def _check_seed(value, text):
    if value > _MAX_SEED:
        raise UserError(f"invalid number list '{text}': {value} is too large (the maximum is {_MAX_SEED})")
    return value


def parse_num_range(s):
    """Parse a seed list such as '6600-6625', '66,230,389' or '1-3,7,10-12'.

    Ranges are inclusive; items keep the order written. A list, tuple or
    range of ints is accepted as is (so callers may pass either form).
    Returns a list of ints; raises UserError for anything malformed.
    """
    if isinstance(s, (list, tuple, range)):
        for value in s:
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
                raise UserError(f'invalid number list {list(s)!r}: {value!r} is not a non-negative integer')
            _check_seed(value, s)
        return list(s)
    if not isinstance(s, str):
        raise TypeError(f'parse_num_range() expects a string or a list of ints, got {type(s).__name__}')

    values = []
    for item in (part.strip() for part in s.split(',')):
        match = _SEED_ITEM_RE.fullmatch(item)
        if match is None:
            problem = f"'{item}' is not a number or a range" if item else 'empty item'
            raise UserError(f"invalid number list '{s}': {problem}; {_SEED_LIST_HELP}")
        first = _check_seed(int(match.group(1)), s)
        if match.group(2) is None:
            values.append(first)
            continue
        last = _check_seed(int(match.group(2)), s)
        if last < first:
            raise UserError(f"invalid number list '{s}': range '{item}' ends before it starts; write it as '{last}-{first}'")
        values.extend(range(first, last + 1))
    return values


# ----------------------------------------------------------------------------
# Command lines: argparse types (a bad value becomes argparse's one-line usage
# error) and the shared start of every subcommand-style script.


def num_range_arg(text):
    """argparse type for seed and layer lists such as '6600-6625' or '1-3,7'."""
    try:
        return parse_num_range(text)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return int(text)


def nonnegative_int(text):
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got '{text}'")
    return int(text)


def str_to_bool(text):
    """argparse type for the original's boolean flags (--mirror-augment=true)."""
    if text.lower() in ('yes', 'true', 't', 'y', '1'):
        return True
    if text.lower() in ('no', 'false', 'f', 'n', '0'):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")


def float_list(text):
    try:
        return [float(item) for item in text.split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, e.g. -4,-2,0,2,4; got '{text}'") \
            from None


def parse_command(parser, argv=None):
    """Parse a subcommand-style command line: print the help and exit 1 without a subcommand, apply --cache-dir.
    Returns (command, the other arguments as a dict without 'command' and 'cache_dir')."""
    args = vars(parser.parse_args(argv))
    command = args.pop('command')
    if command is None:
        parser.print_help()
        sys.exit(1)
    cache_dir = args.pop('cache_dir', None)
    if cache_dir is not None:
        set_cache_dir(cache_dir)
    return command, args


# ----------------------------------------------------------------------------
# Run directories.

_run_dir = None
_LEADING_NUMBER_RE = re.compile(r'[0-9]+')


def set_run_dir(path):
    """Make `path` the current run directory for make_run_dir_path(); None unsets it."""
    global _run_dir
    _run_dir = path


def make_run_dir_path(*paths):
    """Join `paths` onto the current run directory, or onto the working
    directory when no run directory is set."""
    base = os.getcwd() if _run_dir is None else _run_dir
    return os.path.join(base, *paths)


def _next_run_id(result_dir):
    """1 + the highest leading number among the subfolders of result_dir (0 when none)."""
    with os.scandir(result_dir) as entries:
        matches = [_LEADING_NUMBER_RE.match(entry.name) for entry in entries if entry.is_dir()]
    return max((int(match.group()) for match in matches if match), default=-1) + 1


def make_run_dir(result_dir, desc):
    """Create and return a fresh '<result_dir>/<NNNNN>-<desc>' folder.

    NNNNN follows the highest number already used, as in the original's
    submit system. Runs started at the same moment never share a folder:
    os.mkdir fails for all but one of them and the others move on to the
    next number.
    """
    try:
        os.makedirs(result_dir, exist_ok=True)
        run_id = _next_run_id(result_dir)
        while True:
            run_dir = os.path.join(result_dir, f'{run_id:05d}-{desc}')
            try:
                os.mkdir(run_dir)
                return run_dir
            except FileExistsError:
                run_id += 1
    except OSError as err:
        reason = 'a file is in the way' if isinstance(err, FileExistsError) else err.strerror or str(err)
        raise UserError(f"cannot create a run directory in '{result_dir}': {reason}; "
                        'choose another result directory or fix its permissions') from err


# ----------------------------------------------------------------------------
# Logging.


class _TeeStream:
    """Writes to a console stream and to a log file, flushing both each time
    so the log is complete even if the process is killed."""

    def __init__(self, stream, log_file):
        self.stream = stream
        self.log_file = log_file

    def write(self, text):
        self.stream.write(text)
        self.stream.flush()
        self.log_file.write(text)
        self.log_file.flush()
        return len(text)

    def flush(self):
        self.stream.flush()
        self.log_file.flush()

    def __getattr__(self, name):
        # isatty(), encoding, fileno() etc. describe the console (tqdm asks).
        return getattr(self.stream, name)


class Logger:
    """Context manager that copies everything printed to stdout and stderr
    into a log file (default '<run dir>/log.txt', appended to).

    An exception leaving the block is written to the log too, so the log
    says why a run ended: a bug with its traceback, a user's mistake or an
    interruption (Ctrl-C, a second SIGTERM) in cli_main's one line.
    """

    def __init__(self, file_name=None, file_mode='a'):
        self.file_name = make_run_dir_path('log.txt') if file_name is None else file_name
        self.file_mode = file_mode
        self.log_file = None

    def __enter__(self):
        self.log_file = open(self.file_name, self.file_mode, encoding='utf-8')
        self.saved_stdout, self.saved_stderr = sys.stdout, sys.stderr
        self.tee_stdout = _TeeStream(self.saved_stdout, self.log_file)
        self.tee_stderr = _TeeStream(self.saved_stderr, self.log_file)
        sys.stdout, sys.stderr = self.tee_stdout, self.tee_stderr
        return self

    def __exit__(self, exc_type, exc_value, exc_traceback):
        # Leave streams alone if someone replaced them after us (nested loggers).
        if sys.stdout is self.tee_stdout:
            sys.stdout = self.saved_stdout
        if sys.stderr is self.tee_stderr:
            sys.stderr = self.saved_stderr
        if exc_type is not None:
            line = one_line_ending(exc_value)
            self.log_file.write(f'{line}\n' if line else
                                ''.join(traceback.format_exception(exc_type, exc_value, exc_traceback)))
        self.log_file.close()
        self.log_file = None
        return False


# ----------------------------------------------------------------------------
# Atomic writes.


@contextlib.contextmanager
def atomic_write(path, mode='wb'):
    """Open `path` for writing so that it is replaced only once the block
    finishes without error; readers never see a half-written file.

    Data goes to a temporary file next to `path` (same file system, so the
    final os.replace is atomic), which is removed if the block raises.
    Text mode ('w' or 'wt') writes UTF-8.
    """
    if mode not in ('w', 'wt', 'wb'):
        raise ValueError(f"atomic_write() mode must be 'w', 'wt' or 'wb', not {mode!r}")
    directory, name = os.path.split(os.path.abspath(path))
    temp_path = os.path.join(directory, f'.{name}.{uuid.uuid4().hex}.tmp')
    # 'x' creates the file with the usual umask permissions (mkstemp would use 0600).
    open_mode = mode.replace('w', 'x')
    encoding = None if 'b' in mode else 'utf-8'
    try:
        with open(temp_path, open_mode, encoding=encoding) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp_path)
        raise


# ----------------------------------------------------------------------------
# Cache directory.

_cache_dir = None


def set_cache_dir(path):
    """Override the cache directory for this process; None restores the default."""
    global _cache_dir
    _cache_dir = path


def get_cache_dir():
    """The cache directory: set_cache_dir() value, else $DNNLIB_CACHE_DIR,
    else ~/.cache/dnnlib."""
    if _cache_dir is not None:
        return _cache_dir
    if os.environ.get('DNNLIB_CACHE_DIR'):
        return os.environ['DNNLIB_CACHE_DIR']
    # expanduser reads HOME on POSIX and USERPROFILE on Windows.
    return os.path.join(os.path.expanduser('~'), '.cache', 'dnnlib')


def make_cache_dir_path(*paths):
    """Join `paths` onto the cache directory."""
    return os.path.join(get_cache_dir(), *paths)


# ----------------------------------------------------------------------------
# URLs and downloads.

_URL_SCHEME_RE = re.compile(r'^[a-zA-Z][a-zA-Z0-9+.-]*://')
_HTTP_TIMEOUT_S = (10, 60)  # (connect, between bytes); without one a dead server hangs forever
_RETRY_HTTP_STATUSES = {408, 429, 500, 502, 503, 504}  # the server may answer if asked again
_RETRY_DELAY_S = 0.5  # grows linearly with each attempt
_MAX_RETRY_DELAY_S = 5.0
_DOWNLOAD_HELP = 'download the file by hand and pass its local path'


def is_url(obj, allow_file_urls=False):
    """True if obj is an http(s) URL with a host (or a file:// URL when allowed)."""
    if not isinstance(obj, str):
        return False
    try:
        parts = urllib.parse.urlsplit(obj)
        if allow_file_urls and parts.scheme.lower() == 'file':
            return True
        return parts.scheme.lower() in ('http', 'https') and bool(parts.hostname)
    except ValueError:  # e.g. a malformed IPv6 host
        return False


def _file_url_to_path(url):
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    # file:///c:/foo.txt gives '/c:/foo.txt', which is no valid Windows path.
    if re.match(r'^/[a-zA-Z]:', path):
        path = path[1:]
    return path


def _open_local(path, return_filename):
    if return_filename:
        if not os.path.exists(path):
            raise UserError(f'file not found: {path}')
        return path
    try:
        return open(path, 'rb')
    except FileNotFoundError as err:
        raise UserError(f'file not found: {path}') from err


def _exception_chain(err):
    """err and the exceptions it wraps (requests wraps urllib3, which wraps the socket error)."""
    seen = set()
    while isinstance(err, BaseException) and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__ or getattr(err, 'reason', None)


def _describe_connection_failure(err, url):
    """(short reason, worth retrying) for a requests exception other than an HTTP status."""
    if isinstance(err, requests.Timeout):
        return 'the connection timed out', True
    innermost = err
    for cause in _exception_chain(err):
        if isinstance(cause, socket.gaierror):
            # Usually offline or a mistyped host; retrying only delays the error.
            return f"cannot resolve host '{urllib.parse.urlsplit(url).hostname}'", False
        if isinstance(cause, ConnectionRefusedError):
            return 'connection refused', True
        innermost = cause
    if isinstance(innermost, OSError) and innermost.strerror:
        return innermost.strerror, True
    text = str(innermost).strip()
    return (text.splitlines()[0][:200] if text else type(innermost).__name__), True


def _download_file_name(response, url):
    """A file-system safe name for the download, for readable cache entries."""
    match = re.search(r'filename="?([^";]+)"?', response.headers.get('Content-Disposition', ''))
    name = match.group(1) if match else os.path.basename(urllib.parse.urlsplit(url).path)
    return re.sub(r'[^0-9A-Za-z._-]', '_', name)[:128] or 'download'


def _fetch_once(session, url, verbose):
    """One GET of url; returns (data, file name). Raises requests exceptions."""
    with session.get(url, stream=True, timeout=_HTTP_TIMEOUT_S) as response:
        response.raise_for_status()
        file_name = _download_file_name(response, url)
        # Content-Length counts compressed bytes when a Content-Encoding is used.
        size = None
        if 'Content-Encoding' not in response.headers and response.headers.get('Content-Length', '').isdigit():
            size = int(response.headers['Content-Length'])
        data = bytearray()
        with tqdm.tqdm(total=size, desc=file_name, unit='B', unit_scale=True, unit_divisor=1024,
                       disable=not (verbose and size)) as progress:
            for chunk in response.iter_content(chunk_size=1 << 20):
                data += chunk
                progress.update(len(chunk))
        return bytes(data), file_name


def _download(url, num_attempts, verbose):
    """Fetch url into memory, retrying transient failures; returns (data, file name)."""
    if verbose:
        print(f'Downloading {url} ...', flush=True)
    with requests.Session() as session:
        for attempt in range(1, num_attempts + 1):
            http_status = None
            try:
                data, file_name = _fetch_once(session, url, verbose)
                if data:
                    return data, file_name
                reason, transient = 'the server sent no data', True
            except requests.HTTPError as err:
                http_status = err.response.status_code
                reason = f'the server answered HTTP {http_status} {err.response.reason}'
                transient = http_status in _RETRY_HTTP_STATUSES
            except requests.RequestException as err:
                reason, transient = _describe_connection_failure(err, url)
            if not transient or attempt == num_attempts:
                break
            if verbose:
                print(f'Download attempt {attempt} of {num_attempts} failed ({reason}); retrying', flush=True)
            time.sleep(min(_RETRY_DELAY_S * attempt, _MAX_RETRY_DELAY_S))
    if http_status is not None:
        raise UserError(f'cannot download {url}: {reason}; check the URL, or {_DOWNLOAD_HELP}')
    raise UserError(f'cannot download {url}: {reason}; check your network connection, or {_DOWNLOAD_HELP}')


def open_url(url, cache_dir=None, num_attempts=10, verbose=True, return_filename=False, cache=True):
    """Open a local path, file:// URL or http(s) URL as a binary file object.

    Downloads are kept in '<cache_dir>/downloads' (cache_dir defaults to
    get_cache_dir()) under the MD5 of the URL, so each URL is fetched once.
    With return_filename=True, return the local path instead of a file
    object (needs cache=True for URLs). Missing files and failed downloads
    raise UserError.
    """
    if num_attempts < 1:
        raise ValueError('num_attempts must be at least 1')
    if return_filename and not cache:
        raise ValueError('return_filename=True needs cache=True: a download has no path otherwise')

    url = os.fspath(url)  # pathlib.Path arguments are local paths
    if not _URL_SCHEME_RE.match(url):
        return _open_local(url, return_filename)
    if url.lower().startswith('file://'):
        return _open_local(_file_url_to_path(url), return_filename)
    if not is_url(url):
        raise UserError(f'cannot open {url}: not a valid http(s):// or file:// URL; pass a full URL or a local path')

    downloads_dir = os.path.join(get_cache_dir() if cache_dir is None else cache_dir, 'downloads')
    url_md5 = hashlib.md5(url.encode('utf-8')).hexdigest()
    if cache:
        cached = sorted(glob.glob(os.path.join(glob.escape(downloads_dir), f'{url_md5}_*')))
        if cached:
            return cached[0] if return_filename else open(cached[0], 'rb')

    data, file_name = _download(url, num_attempts, verbose)
    if not cache:
        return io.BytesIO(data)

    cache_path = os.path.join(downloads_dir, f'{url_md5}_{file_name}')
    try:
        os.makedirs(downloads_dir, exist_ok=True)
        with atomic_write(cache_path) as file:
            file.write(data)
    except OSError as err:
        raise UserError(f"cannot save the download in '{downloads_dir}': {err.strerror or err}; "
                        'pass a writable cache directory or set DNNLIB_CACHE_DIR') from err
    return cache_path if return_filename else io.BytesIO(data)


# ----------------------------------------------------------------------------
# Progress output.


def file_sha256(path):
    """Hex SHA256 of a file, read in chunks (checks downloads whose URL or name gives the hash)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for chunk in iter(lambda: file.read(1 << 24), b''):
            digest.update(chunk)
    return digest.hexdigest()


def format_time(seconds):
    """Human-readable duration as the original prints it: '59s', '1m 05s',
    '2h 03m 04s', '3d 04h 05m'."""
    s = int(round(seconds))
    if s < 60:
        return f'{s}s'
    if s < 60 * 60:
        return f'{s // 60}m {s % 60:02d}s'
    if s < 24 * 60 * 60:
        return f'{s // 3600}h {s // 60 % 60:02d}m {s % 60:02d}s'
    return f'{s // 86400}d {s // 3600 % 24:02d}h {s // 60 % 60:02d}m'

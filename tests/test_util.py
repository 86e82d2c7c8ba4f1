"""Tests for dnnlib.util: behaviour the command-line scripts rely on."""

import copy
import functools
import hashlib
import http.server
import os
import pickle
import socket
import sys
import threading
import time

import pytest

from dnnlib import util

# ----------------------------------------------------------------------------
# EasyDict and UserError / cli_main.


def test_easydict_attribute_access():
    d = util.EasyDict(a=1)
    d.b = 2
    assert d.a == 1 and d['b'] == 2
    del d.a
    assert 'a' not in d
    assert not hasattr(d, 'a')
    with pytest.raises(AttributeError):
        del d.missing


def test_easydict_pickles_and_copies():
    d = util.EasyDict(x=util.EasyDict(y=[1, 2]))
    for clone in (pickle.loads(pickle.dumps(d)), copy.deepcopy(d)):
        assert type(clone) is util.EasyDict and type(clone.x) is util.EasyDict
        assert clone == d and clone.x.y is not d.x.y


def _exit_code_and_stderr(capsys, main_fn, *args):
    with pytest.raises(SystemExit) as exit_info:
        util.cli_main(main_fn, *args)
    return exit_info.value.code, capsys.readouterr().err


def test_cli_main_returns_result_and_passes_arguments():
    assert util.cli_main(lambda a, b=0: a + b, 1, b=2) == 3


def test_cli_main_user_error(capsys):
    def main():
        print('partial output')
        raise util.UserError('bad --seeds; use e.g. 1-3')
    code, err = _exit_code_and_stderr(capsys, main)
    assert code == 1
    assert err == 'error: bad --seeds; use e.g. 1-3\n'


def test_cli_main_keyboard_interrupt(capsys):
    def main():
        raise KeyboardInterrupt
    code, err = _exit_code_and_stderr(capsys, main)
    assert code == 130
    assert err == 'interrupted\n'


@pytest.mark.parametrize('make_error, reason', [
    (lambda p: open(os.path.join(p, 'missing.pkl'), 'rb'), 'No such file or directory'),
    (lambda p: open(p, 'rb'), 'Is a directory'),
    (lambda p: os.listdir(os.path.join(p, 'file.txt')), 'Not a directory'),
])
def test_cli_main_user_os_errors(capsys, tmp_path, make_error, reason):
    (tmp_path / 'file.txt').write_text('x')
    code, err = _exit_code_and_stderr(capsys, make_error, str(tmp_path))
    assert code == 1
    assert err.startswith(f'error: {reason}: {tmp_path}')
    assert err.count('\n') == 1


def test_cli_main_lets_bugs_propagate():
    def main():
        raise ValueError('a bug')
    with pytest.raises(ValueError, match='a bug'):
        util.cli_main(main)


# ----------------------------------------------------------------------------
# Seed lists.


@pytest.mark.parametrize('text, expected', [
    ('6600-6605', [6600, 6601, 6602, 6603, 6604, 6605]),
    ('66,230,389', [66, 230, 389]),
    ('1-3,7,10-12', [1, 2, 3, 7, 10, 11, 12]),
    (' 9 , 2 - 4 ,0 ', [9, 2, 3, 4, 0]),
    ('5-5', [5]),
    ('0', [0]),
    ('4294967295', [4294967295]),
    ([3, 1, 2], [3, 1, 2]),
    (range(2, 5), [2, 3, 4]),
])
def test_parse_num_range_valid(text, expected):
    assert util.parse_num_range(text) == expected


@pytest.mark.parametrize('text', [
    '', ' ', 'a-b', '5-3', '-1', '1,,2', '1,', '1-', '1-2-3', '1.5', '4294967296', '0-4294967296',
    [1, -2], [1, 'x'], [True], [2**32],
])
def test_parse_num_range_invalid(text):
    with pytest.raises(util.UserError) as err_info:
        util.parse_num_range(text)
    message = str(err_info.value)
    assert 'invalid number list' in message and '\n' not in message


def test_parse_num_range_explains_reversed_range():
    with pytest.raises(util.UserError, match="'3-5'"):
        util.parse_num_range('5-3')


# ----------------------------------------------------------------------------
# Run directories.


def test_make_run_dir_numbering(tmp_path):
    results = tmp_path / 'results'
    assert util.make_run_dir(str(results), 'first') == str(results / '00000-first')
    (results / '00003-foo').mkdir()
    (results / 'junk').mkdir()
    (results / '00042-not-a-folder').write_text('file')
    assert util.make_run_dir(str(results), 'next') == str(results / '00004-next')
    assert os.path.isdir(results / '00004-next')


def test_make_run_dir_race(tmp_path, monkeypatch):
    # Both threads read the folder before either creates its run dir, so both
    # pick the same number and one of them must move on.
    both_scanned = threading.Barrier(2, timeout=5)
    real_next_run_id = util._next_run_id

    def next_run_id_then_wait(result_dir):
        run_id = real_next_run_id(result_dir)
        both_scanned.wait()
        return run_id

    monkeypatch.setattr(util, '_next_run_id', next_run_id_then_wait)
    run_dirs = []
    threads = [threading.Thread(target=lambda: run_dirs.append(util.make_run_dir(str(tmp_path), 'run')))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(run_dirs) == [str(tmp_path / '00000-run'), str(tmp_path / '00001-run')]


def test_make_run_dir_file_in_the_way(tmp_path):
    blocker = tmp_path / 'results'
    blocker.write_text('not a folder')
    for result_dir in (blocker, blocker / 'sub'):
        with pytest.raises(util.UserError, match='cannot create a run directory') as err_info:
            util.make_run_dir(str(result_dir), 'x')
        assert str(result_dir) in str(err_info.value)
    assert blocker.read_text() == 'not a folder'


def test_make_run_dir_permission_denied(tmp_path, monkeypatch):
    # Simulated: permission bits do not stop root, who may run the tests.
    def mkdir_denied(path, *args, **kwargs):
        raise PermissionError(13, 'Permission denied', path)

    monkeypatch.setattr(os, 'mkdir', mkdir_denied)
    with pytest.raises(util.UserError, match='Permission denied') as err_info:
        util.make_run_dir(str(tmp_path), 'x')
    assert str(tmp_path) in str(err_info.value)


def test_make_run_dir_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(util, '_run_dir', None)
    assert util.make_run_dir_path('a.png') == os.path.join(str(tmp_path), 'a.png')
    util.set_run_dir('/runs/00001-x')
    assert util.make_run_dir_path('img', 'a.png') == os.path.join('/runs/00001-x', 'img', 'a.png')


# ----------------------------------------------------------------------------
# Logger.


def test_logger_tees_stdout_and_stderr(tmp_path, capsys):
    log_path = tmp_path / 'log.txt'
    log_path.write_text('earlier run\n')
    console_stdout, console_stderr = sys.stdout, sys.stderr
    with util.Logger(str(log_path)):
        print('to stdout')
        print('to stderr', file=sys.stderr)
        # Each write is flushed, so the log is current while the run goes on.
        assert log_path.read_text() == 'earlier run\nto stdout\nto stderr\n'
    assert sys.stdout is console_stdout and sys.stderr is console_stderr
    print('after')
    captured = capsys.readouterr()
    assert captured.out == 'to stdout\nafter\n'
    assert captured.err == 'to stderr\n'
    assert log_path.read_text() == 'earlier run\nto stdout\nto stderr\n'


def test_logger_defaults_to_run_dir_and_records_exceptions(tmp_path, monkeypatch):
    monkeypatch.setattr(util, '_run_dir', str(tmp_path))
    console_stdout = sys.stdout
    with pytest.raises(RuntimeError):
        with util.Logger():
            print('working')
            raise RuntimeError('run failed')
    assert sys.stdout is console_stdout
    log_text = (tmp_path / 'log.txt').read_text()
    assert log_text.startswith('working\n')
    assert 'RuntimeError: run failed' in log_text


@pytest.mark.parametrize('exc, line', [(KeyboardInterrupt(), 'interrupted\n'),
                                       (util.UserError('bad flag'), 'error: bad flag\n')])
def test_logger_records_interruptions_and_user_errors_in_one_line(tmp_path, exc, line):
    log_path = tmp_path / 'log.txt'
    with pytest.raises(type(exc)):
        with util.Logger(str(log_path)):
            print('working')
            raise exc
    assert log_path.read_text() == 'working\n' + line


# ----------------------------------------------------------------------------
# Atomic writes.


def test_atomic_write_replaces_target(tmp_path):
    target = tmp_path / 'out.pkl'
    target.write_bytes(b'old')
    with util.atomic_write(str(target)) as file:
        file.write(b'new')
        assert target.read_bytes() == b'old'  # not visible until the block ends
    assert target.read_bytes() == b'new'
    with util.atomic_write(str(tmp_path / 'out.txt'), 'w') as file:
        file.write('text \u00e9')
    assert (tmp_path / 'out.txt').read_text(encoding='utf-8') == 'text \u00e9'
    assert sorted(os.listdir(tmp_path)) == ['out.pkl', 'out.txt']


def test_atomic_write_failure_leaves_target_untouched(tmp_path):
    target = tmp_path / 'out.pkl'
    target.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with util.atomic_write(str(target)) as file:
            file.write(b'partial')
            raise RuntimeError('writer crashed')
    with pytest.raises(KeyboardInterrupt):
        with util.atomic_write(str(tmp_path / 'new.pkl')) as file:
            raise KeyboardInterrupt
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['out.pkl']


def test_atomic_write_rejects_non_write_modes(tmp_path):
    for mode in ('a', 'r+b', 'rb'):
        with pytest.raises(ValueError):
            with util.atomic_write(str(tmp_path / 'x'), mode):
                pass
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------
# Cache directory.


@pytest.fixture
def default_cache_dir(monkeypatch):
    """Undo set_cache_dir() after the test."""
    monkeypatch.setattr(util, '_cache_dir', None)


def test_cache_dir_priority(tmp_path, monkeypatch, default_cache_dir):
    monkeypatch.delenv('DNNLIB_CACHE_DIR', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.setenv('USERPROFILE', str(tmp_path / 'home'))
    assert util.get_cache_dir() == os.path.join(str(tmp_path / 'home'), '.cache', 'dnnlib')
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'env'))
    assert util.get_cache_dir() == str(tmp_path / 'env')
    util.set_cache_dir(str(tmp_path / 'set'))
    assert util.get_cache_dir() == str(tmp_path / 'set')
    assert util.make_cache_dir_path('downloads', 'a') == os.path.join(str(tmp_path / 'set'), 'downloads', 'a')
    util.set_cache_dir(None)
    assert util.get_cache_dir() == str(tmp_path / 'env')


# ----------------------------------------------------------------------------
# URLs.


@pytest.mark.parametrize('obj, allow_file_urls, expected', [
    ('https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl', False, True),
    ('http://127.0.0.1:8000/x.pkl', False, True),
    ('http://localhost/x', False, True),
    ('file:///tmp/x.pkl', False, False),
    ('file:///tmp/x.pkl', True, True),
    ('networks/x.pkl', False, False),
    ('C:\\networks\\x.pkl', False, False),
    ('http://', False, False),
    ('http://[::1/x', False, False),
    ('ftp://example.com/x', False, False),
    (None, False, False),
])
def test_is_url(obj, allow_file_urls, expected):
    assert util.is_url(obj, allow_file_urls=allow_file_urls) is expected


def test_open_url_local_path_and_file_url(tmp_path):
    path = tmp_path / 'net work.pkl'
    path.write_bytes(b'weights')
    for url in (str(path), path, path.as_uri()):
        with util.open_url(url, verbose=False) as file:
            assert file.read() == b'weights'
        assert util.open_url(url, return_filename=True) == str(path)


@pytest.mark.parametrize('as_file_url', [False, True])
def test_open_url_missing_local_file(tmp_path, as_file_url):
    path = tmp_path / 'missing.pkl'
    url = path.as_uri() if as_file_url else str(path)
    for return_filename in (False, True):
        with pytest.raises(util.UserError, match='file not found') as err_info:
            util.open_url(url, return_filename=return_filename)
        assert str(path) in str(err_info.value)


def test_open_url_unsupported_scheme():
    for url in ('ftp://example.com/x.pkl', 'http:///x.pkl'):
        with pytest.raises(util.UserError, match='not a valid'):
            util.open_url(url)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def no_proxy(monkeypatch):
    """Talk to 127.0.0.1 directly even where a proxy is configured."""
    for name in ('HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy'):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def serve(tmp_path, no_proxy):
    """Start an HTTP server on 127.0.0.1 for a folder; yields a start function
    returning (base URL, server); servers still running are stopped at the end."""
    servers = []

    def start(root, handler=_QuietHandler):
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(handler, directory=str(root)))
        # A short poll interval keeps shutdown() quick.
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f'http://127.0.0.1:{server.server_address[1]}', server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _stop(server):
    server.shutdown()
    server.server_close()


def test_open_url_downloads_once_then_uses_cache(tmp_path, serve):
    site = tmp_path / 'site'
    site.mkdir()
    payload = os.urandom(100_000)
    (site / 'ffhq.pkl').write_bytes(payload)
    base_url, server = serve(site)
    url = f'{base_url}/ffhq.pkl'
    cache_dir = tmp_path / 'cache'

    with util.open_url(url, cache_dir=str(cache_dir), verbose=False) as file:
        assert file.read() == payload
    cache_file = cache_dir / 'downloads' / f'{hashlib.md5(url.encode()).hexdigest()}_ffhq.pkl'
    assert cache_file.read_bytes() == payload
    assert os.listdir(cache_dir / 'downloads') == [cache_file.name]

    _stop(server)
    with util.open_url(url, cache_dir=str(cache_dir), num_attempts=1, verbose=False) as file:
        assert file.read() == payload
    assert util.open_url(url, cache_dir=str(cache_dir), return_filename=True) == str(cache_file)


def test_open_url_default_cache_dir_and_no_cache(tmp_path, serve, monkeypatch, default_cache_dir):
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'a.bin').write_bytes(b'abc')
    base_url, _ = serve(site)
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'env-cache'))

    assert util.open_url(f'{base_url}/a.bin', verbose=False, cache=False).read() == b'abc'
    assert not (tmp_path / 'env-cache').exists()
    path = util.open_url(f'{base_url}/a.bin', verbose=False, return_filename=True)
    assert os.path.dirname(path) == str(tmp_path / 'env-cache' / 'downloads')


def test_open_url_verbose_progress(tmp_path, serve, capsys):
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'a.bin').write_bytes(b'x' * 5000)
    base_url, _ = serve(site)
    util.open_url(f'{base_url}/a.bin', cache_dir=str(tmp_path / 'cache'))
    captured = capsys.readouterr()
    assert f'Downloading {base_url}/a.bin' in captured.out
    assert 'a.bin' in captured.err and '100%' in captured.err  # tqdm bar


def test_open_url_retries_transient_http_errors(tmp_path, serve):
    request_count = 0

    class FailFirstHandler(_QuietHandler):
        """Answers 503 to the first request, then serves the file."""

        def do_GET(self):
            nonlocal request_count
            request_count += 1
            if request_count == 1:
                self.send_error(503)
            else:
                super().do_GET()

    site = tmp_path / 'site'
    site.mkdir()
    (site / 'a.bin').write_bytes(b'abc')
    base_url, _ = serve(site, FailFirstHandler)
    file = util.open_url(f'{base_url}/a.bin', cache_dir=str(tmp_path / 'cache'), num_attempts=2, verbose=False)
    assert file.read() == b'abc'
    assert request_count == 2


def test_open_url_http_404(tmp_path, serve):
    site = tmp_path / 'site'
    site.mkdir()
    base_url, _ = serve(site)
    url = f'{base_url}/missing.pkl'
    with pytest.raises(util.UserError) as err_info:
        util.open_url(url, cache_dir=str(tmp_path / 'cache'), verbose=False)
    message = str(err_info.value)
    assert message.startswith(f'cannot download {url}: ') and '404' in message and '\n' not in message
    assert not (tmp_path / 'cache' / 'downloads').exists() or not os.listdir(tmp_path / 'cache' / 'downloads')


def test_open_url_unreachable_server(tmp_path, no_proxy):
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        closed_port = sock.getsockname()[1]
    url = f'http://127.0.0.1:{closed_port}/x.pkl'
    start = time.monotonic()
    with pytest.raises(util.UserError) as err_info:
        util.open_url(url, cache_dir=str(tmp_path / 'cache'), num_attempts=2, verbose=False)
    assert time.monotonic() - start < 5
    message = str(err_info.value)
    assert message == (f'cannot download {url}: connection refused; check your network connection, '
                       'or download the file by hand and pass its local path')
    assert not (tmp_path / 'cache').exists()


def test_open_url_unknown_host_fails_without_retrying(tmp_path, no_proxy, monkeypatch):
    lookups = []

    def offline_getaddrinfo(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')

    monkeypatch.setattr(socket, 'getaddrinfo', offline_getaddrinfo)
    with pytest.raises(util.UserError) as err_info:
        util.open_url('https://example.invalid/x.pkl', cache_dir=str(tmp_path), verbose=False)
    assert str(err_info.value).startswith("cannot download https://example.invalid/x.pkl: "
                                          "cannot resolve host 'example.invalid'; check your network connection")
    assert lookups == ['example.invalid']


def test_open_url_timeout(tmp_path, no_proxy, monkeypatch):
    monkeypatch.setattr(util, '_HTTP_TIMEOUT_S', 0.2)
    with socket.socket() as silent_server:  # accepts connections (backlog) but never answers
        silent_server.bind(('127.0.0.1', 0))
        silent_server.listen()
        url = f'http://127.0.0.1:{silent_server.getsockname()[1]}/x.pkl'
        with pytest.raises(util.UserError, match=': the connection timed out; check your network'):
            util.open_url(url, cache_dir=str(tmp_path), num_attempts=1, verbose=False)


def test_open_url_cache_not_writable(tmp_path, serve):
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'a.bin').write_bytes(b'abc')
    base_url, _ = serve(site)
    (tmp_path / 'cache').write_text('a file in the way')
    with pytest.raises(util.UserError, match='DNNLIB_CACHE_DIR'):
        util.open_url(f'{base_url}/a.bin', cache_dir=str(tmp_path / 'cache'), verbose=False)


def test_open_url_rejects_inconsistent_arguments():
    with pytest.raises(ValueError):
        util.open_url('x.pkl', num_attempts=0)
    with pytest.raises(ValueError):
        util.open_url('http://127.0.0.1/x.pkl', return_filename=True, cache=False)


# ----------------------------------------------------------------------------
# Progress output.


@pytest.mark.parametrize('seconds, expected', [
    (0, '0s'),
    (59.4, '59s'),
    (65, '1m 05s'),
    (2 * 3600 + 3 * 60 + 4, '2h 03m 04s'),
    (3 * 86400 + 4 * 3600 + 5 * 60 + 6, '3d 04h 05m'),
])
def test_format_time(seconds, expected):
    assert util.format_time(seconds) == expected

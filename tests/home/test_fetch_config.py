"""The ``[fetch]`` section of a home's ``config.toml``: where the node may fetch from."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.homes import NOW
from trustbridge.clock import FixedClock
from trustbridge.errors import ConfigError, PassphraseError
from trustbridge.home import Home
from trustbridge.home.config import CONFIG_FILE, HomeConfig
from trustbridge.home.secrets import resolve_secret
from trustbridge.trust.paths import FetchAllowList, FetchError, HttpFetcher
from trustbridge.trust.reference import GERMANY

ALLOW = ("crl.rheintal-trust.example", "*.fuji-ca.example", "10.20.0.0/16", "::1/128")

NODE = '[node]\nname = "rheintal"\n'


def _write(home: Path, text: str) -> Path:
    home.mkdir(exist_ok=True)
    path = home / CONFIG_FILE
    path.write_text(text)
    return path


def test_the_allow_list_round_trips(tmp_path: Path) -> None:
    config = HomeConfig(node_name="rheintal", fetch_allow=FetchAllowList(ALLOW))
    config.save(tmp_path)
    written = tomllib.loads((tmp_path / CONFIG_FILE).read_text())
    assert written["fetch"] == {"allow": list(ALLOW)}
    loaded = HomeConfig.load(tmp_path)
    assert loaded == config
    assert loaded.fetch_allow is not None and loaded.fetch_allow.entries == ALLOW


def test_entries_are_written_back_in_canonical_form(tmp_path: Path) -> None:
    _write(tmp_path, NODE + '[fetch]\nallow = ["CRL.Sakura-Trust.example.", "10.9.9.9"]\n')
    HomeConfig.load(tmp_path).save(tmp_path)
    written = tomllib.loads((tmp_path / CONFIG_FILE).read_text())
    assert written["fetch"] == {"allow": ["crl.sakura-trust.example", "10.9.9.9/32"]}


def test_an_empty_list_is_kept_and_allows_nothing(tmp_path: Path) -> None:
    _write(tmp_path, NODE + "[fetch]\nallow = []\n")
    config = HomeConfig.load(tmp_path)
    assert config.fetch_allow == FetchAllowList(())
    config.save(tmp_path)
    assert tomllib.loads((tmp_path / CONFIG_FILE).read_text())["fetch"] == {"allow": []}
    fetcher = HttpFetcher(allow=config.fetch_allow)
    with pytest.raises(FetchError, match="not on this node's fetch allow-list"):
        fetcher.fetch("http://127.0.0.1:9/ca.crl")


@pytest.mark.parametrize("section", ["", "[fetch]\n"])
def test_without_an_allow_entry_there_is_no_list(tmp_path: Path, section: str) -> None:
    _write(tmp_path, NODE + section)
    config = HomeConfig.load(tmp_path)
    assert config.fetch_allow is None
    config.save(tmp_path)
    assert "fetch" not in tomllib.loads((tmp_path / CONFIG_FILE).read_text())


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ('fetch = ["crl.example"]\n' + NODE, "fetch must be a [fetch] section"),
        ('[fetch]\nallow = "crl.example"\n', "[fetch] allow must be a list"),
        ('[fetch]\nalow = ["crl.example"]\n', "[fetch] has unknown key(s) alow"),
        ("[fetch]\nallow = [7]\n", "[fetch] allow: fetch allow-list entry 7 is not a string"),
        (
            '[fetch]\nallow = ["crl.example", "https://crl.example/ca.crl"]\n',
            "entry 'https://crl.example/ca.crl' is not a host name",
        ),
        ('[fetch]\nallow = ["10.20.0.1/16"]\n', "entry '10.20.0.1/16' is not a network"),
        ('[fetch]\nallow = ["*"]\n', "entry '*' is not a host name"),
    ],
)
def test_a_malformed_entry_names_itself_and_the_file(tmp_path: Path, toml: str, said: str) -> None:
    text = toml if toml.startswith("fetch") else NODE + toml
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(said)) as raised:
        HomeConfig.load(tmp_path)
    assert raised.value.message.startswith(f"{path}: ")


def _home_with(tmp_path: Path, fetch: str) -> Home:
    """A home with a scheme, opened afresh after ``fetch`` was added to its config."""
    created = Home.init(tmp_path / "h", node_name="rheintal", clock=FixedClock(NOW))
    created.create_scheme(GERMANY)
    created.close()
    path = tmp_path / "h" / CONFIG_FILE
    path.write_text(path.read_text() + f"\n[fetch]\n{fetch}\n")
    return Home.open(tmp_path / "h", clock=FixedClock(NOW))


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """A home whose config names an allow-list."""
    return _home_with(tmp_path, 'allow = ["127.0.0.0/8"]')


def test_the_homes_fetchers_carry_the_configured_list(home: Home) -> None:
    try:
        expected = FetchAllowList(("127.0.0.0/8",))
        assert home.fetcher().allow == expected
        # The services that fetch for this home use it unless given another fetcher.
        resolver = home.trust.resolver()
        assert isinstance(resolver.fetcher, HttpFetcher) and resolver.fetcher.allow == expected
        with pytest.raises(FetchError, match=r"host 10\.1\.2\.3 is not on this node's fetch"):
            home.fetcher().fetch("http://10.1.2.3/ca.crl")
    finally:
        home.close()


def test_a_home_without_the_section_fetches_as_before(tmp_path: Path) -> None:
    home = Home.init(tmp_path / "h", node_name="rheintal", clock=FixedClock(NOW))
    try:
        assert home.config.fetch_allow is None and home.fetcher().allow is None
    finally:
        home.close()


def test_a_home_with_a_malformed_section_does_not_open(tmp_path: Path) -> None:
    Home.init(tmp_path / "h", node_name="rheintal", clock=FixedClock(NOW)).close()
    path = tmp_path / "h" / CONFIG_FILE
    path.write_text(path.read_text() + '\n[fetch]\nallow = ["crl.example:8080"]\n')
    with pytest.raises(ConfigError, match=re.escape(f"{path}: [fetch] allow: fetch allow-list")):
        Home.open(tmp_path / "h")


def test_the_proxy_round_trips_in_canonical_form(tmp_path: Path) -> None:
    _write(tmp_path, NODE + '[fetch]\nproxy = "http://Proxy.Werk.example:3128/"\n')
    config = HomeConfig.load(tmp_path)
    assert config.fetch_proxy == "http://proxy.werk.example:3128"
    assert config.fetch_allow is None
    config.save(tmp_path)
    written = tomllib.loads((tmp_path / CONFIG_FILE).read_text())
    assert written["fetch"] == {"proxy": "http://proxy.werk.example:3128"}
    both = HomeConfig(node_name="n", fetch_allow=FetchAllowList(ALLOW), fetch_proxy=PROXY)
    both.save(tmp_path)
    assert HomeConfig.load(tmp_path) == both


PROXY = "http://10.20.0.8:3128"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ('"https://proxy.example:3128"', "is not an http:// proxy URL"),
        ('"socks5://proxy.example:1080"', "is not an http:// proxy URL"),
        ('"proxy.example:3128"', "is not an http:// proxy URL"),
        ('"http://:3128"', "names no host"),
        ('"http://proxy.example:31x8"', "is not a valid URL"),
        ('"http://proxy.example:3128/pac"', "has a path, query or fragment"),
        ("3128", "fetch proxy 3128 is not a URL string"),
    ],
)
def test_a_malformed_proxy_names_itself_and_the_file(tmp_path: Path, value: str, said: str) -> None:
    path = _write(tmp_path, NODE + f"[fetch]\nproxy = {value}\n")
    with pytest.raises(ConfigError, match=re.escape(said)) as raised:
        HomeConfig.load(tmp_path)
    assert raised.value.message.startswith(f"{path}: [fetch] proxy: ")


def test_proxy_credentials_are_refused_without_showing_them(tmp_path: Path) -> None:
    _write(tmp_path, NODE + '[fetch]\nproxy = "http://werk:s3cret@proxy.example:3128"\n')
    with pytest.raises(ConfigError, match="carries credentials") as raised:
        HomeConfig.load(tmp_path)
    assert "s3cret" not in raised.value.message and "werk" not in raised.value.message


def test_the_homes_fetchers_go_through_the_configured_proxy(tmp_path: Path) -> None:
    home = _home_with(tmp_path, f'proxy = "{PROXY}"')
    try:
        assert home.fetcher().proxy == PROXY
        resolver = home.trust.resolver()
        assert isinstance(resolver.fetcher, HttpFetcher) and resolver.fetcher.proxy == PROXY
    finally:
        home.close()


@pytest.mark.parametrize("table", ["[Fetch]", "[fetch_proxy]", "[fetsch]"])
def test_a_misspelt_table_stops_the_home_from_opening(tmp_path: Path, table: str) -> None:
    path = _write(tmp_path, NODE + f'{table}\nproxy = "{PROXY}"\nallow = []\n')
    with pytest.raises(ConfigError, match="unknown table") as raised:
        HomeConfig.load(tmp_path)
    assert raised.value.message.startswith(f"{path}: ")
    assert table.strip("[]") in raised.value.message


# -- a proxy that asks for credentials: [fetch] proxy_user, the password a home secret --------

USER = "werk-pki"


def test_the_proxy_user_round_trips(tmp_path: Path) -> None:
    config = HomeConfig(node_name="n", fetch_proxy=PROXY, fetch_proxy_user=USER)
    config.save(tmp_path)
    written = tomllib.loads((tmp_path / CONFIG_FILE).read_text())
    assert written["fetch"] == {"proxy": PROXY, "proxy_user": USER}
    assert HomeConfig.load(tmp_path) == config


@pytest.mark.parametrize(
    ("fetch", "said"),
    [
        (f'proxy_user = "{USER}"', "[fetch] proxy_user is set, but no [fetch] proxy"),
        (f'proxy = "{PROXY}"\nproxy_user = "werk:pki"', "has a colon or a control character"),
        (f'proxy = "{PROXY}"\nproxy_user = ""', "is not a non-empty string"),
        (f'proxy = "{PROXY}"\nproxy_user = 42', "fetch proxy user 42 is not"),
    ],
)
def test_a_malformed_proxy_user_names_itself_and_the_file(
    tmp_path: Path, fetch: str, said: str
) -> None:
    path = _write(tmp_path, NODE + f"[fetch]\n{fetch}\n")
    with pytest.raises(ConfigError, match=re.escape(said)) as raised:
        HomeConfig.load(tmp_path)
    assert raised.value.message.startswith(f"{path}: [fetch] proxy_user")


def test_the_proxy_password_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUSTBRIDGE_PASSPHRASE_FETCH_PROXY", "Kupfer-7.Draht")
    home = _home_with(tmp_path, f'proxy = "{PROXY}"\nproxy_user = "{USER}"')
    try:
        assert home.fetcher().proxy_auth == (USER, b"Kupfer-7.Draht")
        # The trust resolver's fetcher is the home's: it carries the credentials too.
        resolver = home.trust.resolver()
        assert isinstance(resolver.fetcher, HttpFetcher)
        assert resolver.fetcher.proxy_auth == (USER, b"Kupfer-7.Draht")
    finally:
        home.close()


def _with_password_file(tmp_path: Path, mode: int, content: bytes = b"Kupfer-7.Draht\n") -> Home:
    home = _home_with(
        tmp_path,
        f'proxy = "{PROXY}"\nproxy_user = "{USER}"\n'
        '[secrets.fetch-proxy]\nfile = "secrets/fetch-proxy"',
    )
    secret = home.path / "secrets" / "fetch-proxy"
    secret.parent.mkdir(exist_ok=True)
    secret.write_bytes(content)
    secret.chmod(mode)
    return home


def test_the_proxy_password_comes_from_a_protected_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUSTBRIDGE_PASSPHRASE_FETCH_PROXY", "not this one")
    home = _with_password_file(tmp_path, 0o600)
    try:
        assert home.fetcher().proxy_auth == (USER, b"Kupfer-7.Draht")
    finally:
        home.close()


def test_a_password_file_others_can_read_is_refused(tmp_path: Path) -> None:
    home = _with_password_file(tmp_path, 0o644)
    try:
        with pytest.raises(ConfigError, match="readable by others") as raised:
            home.fetcher()
        assert f"for fetch proxy user '{USER}'" in raised.value.message
    finally:
        home.close()


def test_without_a_password_the_fetcher_says_where_to_put_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRUSTBRIDGE_PASSPHRASE_FETCH_PROXY", raising=False)
    home = _home_with(tmp_path, f'proxy = "{PROXY}"\nproxy_user = "{USER}"')
    try:
        with pytest.raises(
            PassphraseError, match=f"no password for fetch proxy user '{USER}'"
        ) as raised:
            home.fetcher()
        assert raised.value.hint is not None
        assert "TRUSTBRIDGE_PASSPHRASE_FETCH_PROXY" in raised.value.hint
        # Opened without a prompt: nothing would ask, so the hint does not send anyone to a
        # terminal; with a prompt that got no answer, it does.
        assert "terminal" not in raised.value.hint
        with pytest.raises(PassphraseError) as unanswered:
            resolve_secret("fetch-proxy", None, home=home.path, prompt=lambda _: "")
        assert unanswered.value.hint is not None and "run in a terminal" in unanswered.value.hint
    finally:
        home.close()


def test_an_unreadable_password_file_is_named_without_its_content(tmp_path: Path) -> None:
    home = _with_password_file(tmp_path, 0o600, b"Kupfer-\xe9-Draht\n")
    try:
        with pytest.raises(ConfigError, match="cannot be read: not UTF-8 text") as raised:
            home.fetcher()
        assert "fetch-proxy for fetch proxy user 'werk-pki'" in raised.value.message
        assert "xe9" not in raised.value.message and "Kupfer" not in raised.value.message
        secret = home.path / "secrets" / "fetch-proxy"
        secret.unlink()
        secret.mkdir(mode=0o700)
        with pytest.raises(ConfigError, match="cannot be read: Is a directory"):
            home.fetcher()
    finally:
        home.close()

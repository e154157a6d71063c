"""Taking up a renewed certificate while the process runs.

Provisioned certificates (AMPMESH_CREATE_CERTS=false: cert-manager's Secret, mounted by the
kubelet) are renewed on disk weeks before the leaf expires, and the kubelet swaps the files
in every pod of that identity at once. gRPC reads a certificate when a server or channel is
made, so the process takes the new leaf up by restarting gracefully, exactly as on SIGTERM
(NOT_SERVING, drain, exit 0), and the kubelet starts the container again with the new
files. A random delay of up to AMPMESH_CERT_RENEWAL_JITTER seconds spreads an identity's
replicas' restarts, so they never all leave at once: the old leaf stays valid for weeks.

A leaf on disk that does not verify (another CA, another identity, key mismatch, about to
expire) is logged once, as an error, and ignored: restarting would only make the process
fail to start with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from services.runtime.logs import get_logger
from services.runtime.tls import CertificateError, ServiceCredentials, ensure_service_credentials

_log = get_logger("ampmesh.cert_watch")


class CertificateWatch:
    """Polls an identity's certificate files; calls `restart` once a renewed, valid leaf
    has been on disk for the jitter delay. run() returns after calling it."""

    def __init__(
        self,
        cert_dir: Path,
        running: ServiceCredentials,
        *,
        interval: float,
        jitter: float,
        restart: Callable[[], None],
    ) -> None:
        self.cert_dir = cert_dir
        self.running = running
        self.interval = interval
        self.jitter = jitter
        self._restart = restart
        # The files' content last found to hold the running credentials (or an invalid
        # leaf already reported), the previous poll's, and the last invalid one reported.
        self._settled: str | None = None
        self._previous: str | None = None
        self._reported: str | None = None

    def _files(self) -> list[Path]:
        identity = self.running.identity
        return [self.cert_dir / name for name in (f"{identity}.pem", f"{identity}.key", "ca.pem")]

    def fingerprint(self) -> str:
        """A digest of the files as they are now; a missing one counts as empty. Reading
        three small files every interval is cheaper than anything that would watch them."""
        digest = hashlib.sha256()
        for path in self._files():
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"\0missing")
            digest.update(b"\0")
        return digest.hexdigest()

    def _load(self) -> ServiceCredentials | CertificateError:
        try:
            return ensure_service_credentials(self.cert_dir, self.running.identity, create=False)
        except CertificateError as error:
            return error

    def _renewed(self, loaded: ServiceCredentials) -> bool:
        current = self.running
        return (loaded.cert_pem, loaded.key_pem, loaded.ca_pem) != (
            current.cert_pem,
            current.key_pem,
            current.ca_pem,
        )

    def poll(self) -> ServiceCredentials | None:
        """One check: the renewed credentials, or None (unchanged, or not usable)."""
        seen = self.fingerprint()
        previous, self._previous = self._previous, seen
        if seen == self._settled:
            return None
        loaded = self._load()
        if isinstance(loaded, ServiceCredentials):
            if self._renewed(loaded):
                return loaded
            self._settled = seen
            return None
        # The kubelet swaps all files at once, but a copy made file by file (or a read
        # that straddles the swap) can look invalid for a moment: report only what stays.
        if seen == previous and seen != self._reported:
            self._reported = seen
            self._settled = seen
            _log.error(
                "certificate on disk ignored: not valid for this service; still serving "
                "with the current one",
                identity=self.running.identity,
                error=str(loaded),
            )
        return None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            renewed = self.poll()
            if renewed is None:
                continue
            delay = random.uniform(0, self.jitter)  # noqa: S311 (spreading restarts, not secrecy)
            _log.info(
                "certificate renewed on disk; restarting to take it up after a random delay",
                identity=renewed.identity,
                serial=_serial(renewed),
                not_valid_after=_not_valid_after(renewed),
                restart_in_seconds=round(delay, 1),
            )
            await asyncio.sleep(delay)
            # Files can change again during the delay: restart only onto what is valid now.
            again = self._load()
            if isinstance(again, CertificateError) or not self._renewed(again):
                _log.warning(
                    "restart for a renewed certificate called off: the files changed",
                    identity=self.running.identity,
                )
                self._settled = self._previous = None
                continue
            _log.info(
                "restarting gracefully to take up the renewed certificate",
                identity=again.identity,
                serial=_serial(again),
            )
            self._restart()
            return


def _serial(creds: ServiceCredentials) -> str:
    return format(x509.load_pem_x509_certificate(creds.cert_pem).serial_number, "x")


def _not_valid_after(creds: ServiceCredentials) -> str:
    return x509.load_pem_x509_certificate(creds.cert_pem).not_valid_after_utc.isoformat()

"""cryptography (OpenSSL through Rust and cffi): Fernet, RSA-PSS sign and
verify, AES-GCM against the GCM specification's test vector."""
__deps_dir__ = "deps"

import plugbox


@plugbox.export
def run():
    from cryptography.exceptions import InvalidSignature
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    f = Fernet(Fernet.generate_key())
    token = f.encrypt(b"secret message")

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    sig = key.sign(b"payload", pss, hashes.SHA256())
    key.public_key().verify(sig, b"payload", pss, hashes.SHA256())
    try:
        key.public_key().verify(sig, b"payload!", pss, hashes.SHA256())
        tampered = "accepted"
    except InvalidSignature:
        tampered = "rejected"

    # GCM specification, test case 2: zero key, zero IV, 16 zero bytes.
    gcm = AESGCM(bytes(16)).encrypt(bytes(12), bytes(16), None)
    return {
        "fernet": f.decrypt(token).decode(),
        "rsa_sig_len": len(sig),
        "tampered": tampered,
        "gcm": gcm.hex(),
        "gcm_back": AESGCM(bytes(16)).decrypt(bytes(12), gcm, None).hex(),
    }

// trustbridge node web UI: a registration officer's decision, signed in the browser.
//
// The node prepares the exact decision statement (GET .../statement); this script signs it with
// the officer's private key (a PKCS#8 PEM file, optionally encrypted with PBES2) using WebCrypto
// and sends statement and signature (ECDSA r || s, base64) with the form's token. The key is read
// here and never leaves the browser: its file input is not part of the form that is sent.
"use strict";

(function () {
  const section = document.getElementById("decide");
  if (!section) {
    return;
  }
  const form = document.getElementById("decision-form");
  const status = document.getElementById("decide-status");
  const prepareButton = document.getElementById("prepare");
  const signButton = document.getElementById("sign");
  const prepared = document.getElementById("prepared");
  const statementText = document.getElementById("statement-text");
  const reasonInput = document.getElementById("reason");
  const keyInput = document.getElementById("key-file");
  const passphraseInput = document.getElementById("key-passphrase");
  let statement = null;

  function say(text, error) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(error));
  }

  function choice() {
    const checked = section.querySelector("input[name=choice]:checked");
    return checked ? checked.value : "approve";
  }

  function forget() {
    statement = null;
    prepared.hidden = true;
    statementText.textContent = "";
  }

  // -- encodings ---------------------------------------------------------------------------

  function fromBase64(text) {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes;
  }

  function toBase64(bytes) {
    let raw = "";
    for (const byte of bytes) {
      raw += String.fromCharCode(byte);
    }
    return btoa(raw);
  }

  function pemBlock(text) {
    const match = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
    if (!match) {
      throw new Error("the file is not a PEM file (no -----BEGIN ...----- block)");
    }
    return { label: match[1], der: fromBase64(match[2].replace(/\s+/g, "")) };
  }

  // -- a minimal DER reader, enough for an EncryptedPrivateKeyInfo (RFC 5958, RFC 8018) --------

  function node(bytes, offset) {
    const tag = bytes[offset];
    let length = bytes[offset + 1];
    let start = offset + 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      if (count < 1 || count > 3) {
        throw new Error("the key file is not valid DER");
      }
      length = 0;
      for (let i = 0; i < count; i += 1) {
        length = length * 256 + bytes[start + i];
      }
      start += count;
    }
    if (start + length > bytes.length) {
      throw new Error("the key file is truncated");
    }
    return { tag: tag, start: start, end: start + length };
  }

  function children(bytes, parent) {
    const out = [];
    let offset = parent.start;
    while (offset < parent.end) {
      const child = node(bytes, offset);
      out.push(child);
      offset = child.end;
    }
    return out;
  }

  function content(bytes, item) {
    return bytes.slice(item.start, item.end);
  }

  function oid(bytes, item) {
    if (item.tag !== 0x06) {
      throw new Error("the key file is not an encrypted PKCS#8 key");
    }
    const raw = content(bytes, item);
    const parts = [Math.floor(raw[0] / 40), raw[0] % 40];
    let value = 0;
    for (let i = 1; i < raw.length; i += 1) {
      value = value * 128 + (raw[i] & 0x7f);
      if (!(raw[i] & 0x80)) {
        parts.push(value);
        value = 0;
      }
    }
    return parts.join(".");
  }

  function integer(bytes, item) {
    let value = 0;
    for (const byte of content(bytes, item)) {
      value = value * 256 + byte;
    }
    return value;
  }

  const PRFS = {
    "1.2.840.113549.2.7": "SHA-1",
    "1.2.840.113549.2.9": "SHA-256",
    "1.2.840.113549.2.10": "SHA-384",
    "1.2.840.113549.2.11": "SHA-512",
  };
  const CIPHERS = {
    "2.16.840.1.101.3.4.1.2": 128,
    "2.16.840.1.101.3.4.1.42": 256,
  };

  async function decrypt(der, passphrase) {
    // EncryptedPrivateKeyInfo: { { PBES2, { { PBKDF2, params }, { AES-CBC, iv } } }, data }
    const top = children(der, node(der, 0));
    const [algorithm, data] = top;
    const [scheme, schemeParams] = children(der, algorithm);
    if (oid(der, scheme) !== "1.2.840.113549.1.5.13") {
      throw new Error("the key is encrypted with a scheme other than PBES2: re-encrypt it with openssl pkcs8 -topk8 -v2 aes-256-cbc");
    }
    const [kdf, cipher] = children(der, schemeParams);
    const [kdfOid, kdfParams] = children(der, kdf);
    if (oid(der, kdfOid) !== "1.2.840.113549.1.5.12") {
      throw new Error("the key's passphrase is derived with a function other than PBKDF2: re-encrypt it with openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256");
    }
    let salt = null;
    let iterations = 0;
    let prf = "SHA-1";
    for (const item of children(der, kdfParams)) {
      if (item.tag === 0x04 && salt === null) {
        salt = content(der, item);
      } else if (item.tag === 0x02 && iterations === 0) {
        iterations = integer(der, item);
      } else if (item.tag === 0x30) {
        const name = PRFS[oid(der, children(der, item)[0])];
        if (!name) {
          throw new Error("the key's PBKDF2 uses an unknown hash");
        }
        prf = name;
      }
    }
    const [cipherOid, iv] = children(der, cipher);
    const length = CIPHERS[oid(der, cipherOid)];
    if (!length) {
      throw new Error("the key is encrypted with a cipher this browser cannot use: re-encrypt it with openssl pkcs8 -topk8 -v2 aes-256-cbc");
    }
    const base = await crypto.subtle.importKey(
      "raw", new TextEncoder().encode(passphrase), "PBKDF2", false, ["deriveKey"]);
    const aes = await crypto.subtle.deriveKey(
      { name: "PBKDF2", salt: salt, iterations: iterations, hash: prf },
      base, { name: "AES-CBC", length: length }, false, ["decrypt"]);
    try {
      return new Uint8Array(await crypto.subtle.decrypt(
        { name: "AES-CBC", iv: content(der, iv) }, aes, content(der, data)));
    } catch (error) {
      throw new Error("the passphrase does not open this key");
    }
  }

  async function privateKey() {
    const file = keyInput.files[0];
    if (!file) {
      throw new Error("choose the file of your private key (PKCS#8 PEM)");
    }
    const block = pemBlock(await file.text());
    let pkcs8;
    if (block.label === "PRIVATE KEY") {
      pkcs8 = block.der;
    } else if (block.label === "ENCRYPTED PRIVATE KEY") {
      if (!passphraseInput.value) {
        throw new Error("the key is encrypted: enter its passphrase");
      }
      pkcs8 = await decrypt(block.der, passphraseInput.value);
    } else {
      throw new Error("the file holds a " + block.label + ", not a PKCS#8 private key: convert it with openssl pkcs8 -topk8");
    }
    let key;
    try {
      key = await crypto.subtle.importKey(
        "pkcs8", pkcs8, { name: "ECDSA", namedCurve: section.dataset.curve }, true, ["sign"]);
    } catch (error) {
      throw new Error("the file is not an ECDSA " + section.dataset.curve + " key, as your certificate's is");
    }
    const jwk = await crypto.subtle.exportKey("jwk", key);
    if (jwk.x !== section.dataset.x || jwk.y !== section.dataset.y) {
      throw new Error("this key does not belong to the certificate you are logged in with");
    }
    return key;
  }

  // -- the two steps -----------------------------------------------------------------------

  async function prepare() {
    forget();
    say("Asking the node for the statement ...");
    const query = new URLSearchParams({ decision: choice(), reason: reasonInput.value });
    const response = await fetch(section.dataset.statementUrl + "?" + query.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const body = await response.json();
    if (!response.ok) {
      throw new Error(body.error + (body.hint ? " (" + body.hint + ")" : ""));
    }
    statement = body.statement;
    statementText.textContent = JSON.stringify(JSON.parse(body.text), null, 2);
    prepared.hidden = false;
    say("Check the statement, then sign it.");
  }

  async function sign() {
    if (statement === null) {
      throw new Error("prepare the statement first");
    }
    say("Signing in this browser ...");
    const key = await privateKey();
    const signature = await crypto.subtle.sign(
      { name: "ECDSA", hash: section.dataset.hash }, key, fromBase64(statement));
    form.elements.statement.value = statement;
    form.elements.signature.value = toBase64(new Uint8Array(signature));
    passphraseInput.value = "";
    say("Sending the signed decision ...");
    form.submit();
  }

  function guard(step) {
    return function () {
      if (!window.crypto || !crypto.subtle) {
        say("This browser offers no WebCrypto here (it needs HTTPS).", true);
        return;
      }
      step().catch(function (error) {
        say(error.message, true);
      });
    };
  }

  prepareButton.addEventListener("click", guard(prepare));
  signButton.addEventListener("click", guard(sign));
  reasonInput.addEventListener("input", forget);
  for (const radio of section.querySelectorAll("input[name=choice]")) {
    radio.addEventListener("change", forget);
  }
})();

#!/usr/bin/env bash
# Makes Sigstore material the way cosign, Fulcio and Rekor would, with the
# openssl command line only (there is no cosign package here): a throwaway
# CA stands in for Fulcio and a throwaway key for Rekor, so keyless
# signatures can be checked offline against a test trusted root.
#
#   sigstore.sh root DIR
#       DIR/ca.key, ca.pem (P-384 CA), rekor.key, trusted_root.json
#   sigstore.sh leaf DIR NAME ISSUER SUBJECT [CA]
#       DIR/NAME.key, NAME.pem: a code-signing leaf issued by CA (default
#       DIR/ca; another root made with `root` may be named) with Fulcio's
#       OIDC issuer extension and SUBJECT as its SAN URI (extended key
#       usage codeSigning, or $LEAF_EKU)
#   sigstore.sh keyless DIR NAME PAYLOAD
#       prints the `.sig` layer annotations (JSON object) of a keyless
#       signature of the file PAYLOAD by leaf NAME, logged in "Rekor"
#   sigstore.sh bundle DIR NAME STATEMENT
#       prints a Sigstore bundle (v0.3, DSSE over the in-toto STATEMENT
#       file) signed by leaf NAME and logged in "Rekor", with the inclusion
#       promise and an inclusion proof (a two-entry tree) and checkpoint
#   sigstore.sh bundle-key DIR KEY STATEMENT
#       the same signed by the private key file KEY, without certificate
#       or log entry (a key-based bundle)
set -euo pipefail

if ! command -v openssl >/dev/null 2>&1; then
  echo "sigstore.sh: openssl is not installed; install it with: apt-get install openssl" >&2
  exit 1
fi

b64() { base64 -w0; }
ossl() { openssl "$@" 2>/dev/null; }
json_string() { # a file's text as a JSON string
  local text
  text=$(cat "$1")
  text=${text//\\/\\\\}
  text=${text//\"/\\\"}
  printf '"%s"' "${text//$'\n'/\\n}"
}

# rekor_entry DIR BODY: sets LOG_ID (hex), LOG_ID_B64, TIME, INDEX, SET (base64)
rekor_entry() {
  local dir=$1 body=$2
  LOG_ID=$(ossl pkey -in "$dir/rekor.key" -pubout -outform DER | sha256sum | cut -d' ' -f1)
  LOG_ID_B64=$(ossl pkey -in "$dir/rekor.key" -pubout -outform DER | openssl dgst -sha256 -binary | b64)
  TIME=$(date +%s)
  INDEX=$((RANDOM + 1000))
  printf '{"body":"%s","integratedTime":%s,"logID":"%s","logIndex":%s}' \
    "$(printf '%s' "$body" | b64)" "$TIME" "$LOG_ID" "$INDEX" > "$dir/set-payload"
  SET=$(ossl dgst -sha256 -sign "$dir/rekor.key" "$dir/set-payload" | b64)
}

# inclusion_proof DIR BODY: prints the inclusionProof JSON of BODY as the
# second entry of a two-entry tree, with a checkpoint signed by the log key
inclusion_proof() {
  local dir=$1 body=$2 root note hint
  { printf '\x00'; printf '%s' "$body"; } | openssl dgst -sha256 -binary > "$dir/leaf.bin"
  head -c 32 /dev/urandom > "$dir/sibling.bin"
  { printf '\x01'; cat "$dir/sibling.bin" "$dir/leaf.bin"; } | openssl dgst -sha256 -binary > "$dir/root.bin"
  root=$(b64 < "$dir/root.bin")
  printf 'rekor.invalid - 1234\n2\n%s\n' "$root" > "$dir/note"
  ossl pkey -in "$dir/rekor.key" -pubout -outform DER | openssl dgst -sha256 -binary | head -c 4 > "$dir/hint.bin"
  ossl dgst -sha256 -sign "$dir/rekor.key" "$dir/note" > "$dir/note.sig"
  hint=$(cat "$dir/hint.bin" "$dir/note.sig" | b64)
  note=$(printf 'rekor.invalid - 1234\\n2\\n%s\\n\\n\u2014 rekor.invalid %s\\n' "$root" "$hint")
  printf '{"logIndex":"1","rootHash":"%s","treeSize":"2","hashes":["%s"],"checkpoint":{"envelope":"%s"}}' \
    "$root" "$(b64 < "$dir/sibling.bin")" "$note"
}

case $1 in
  root)
    dir=$2
    mkdir -p "$dir"
    ossl ecparam -name secp384r1 -genkey -noout -out "$dir/ca.key"
    ossl req -x509 -new -key "$dir/ca.key" -sha384 -days 30 -subj "/O=crowsnest test/CN=test-fulcio" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" -out "$dir/ca.pem"
    ossl ecparam -name prime256v1 -genkey -noout -out "$dir/rekor.key"
    rekor_der=$(ossl pkey -in "$dir/rekor.key" -pubout -outform DER | b64)
    log_id=$(ossl pkey -in "$dir/rekor.key" -pubout -outform DER | openssl dgst -sha256 -binary | b64)
    ca_der=$(ossl x509 -in "$dir/ca.pem" -outform DER | b64)
    cat > "$dir/trusted_root.json" <<JSON
{
  "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
  "tlogs": [{
    "baseUrl": "https://rekor.invalid",
    "hashAlgorithm": "SHA2_256",
    "publicKey": {"rawBytes": "$rekor_der", "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": "2020-01-01T00:00:00Z"}},
    "logId": {"keyId": "$log_id"}
  }],
  "certificateAuthorities": [{
    "subject": {"organization": "crowsnest test", "commonName": "test-fulcio"},
    "uri": "https://fulcio.invalid",
    "certChain": {"certificates": [{"rawBytes": "$ca_der"}]},
    "validFor": {"start": "2020-01-01T00:00:00Z"}
  }],
  "ctlogs": [],
  "timestampAuthorities": []
}
JSON
    ;;
  leaf)
    dir=$2 name=$3 issuer=$4 subject=$5 ca=${6:-$2/ca}
    ossl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key"
    ossl req -new -key "$dir/$name.key" -subj "/" -out "$dir/$name.csr"
    cat > "$dir/$name.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=${LEAF_EKU:-codeSigning}
subjectAltName=critical,URI:$subject
1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:$issuer
EXT
    ossl x509 -req -in "$dir/$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 1 \
      -sha384 -extfile "$dir/$name.ext" -out "$dir/$name.pem"
    ;;
  keyless)
    dir=$2 name=$3 payload=$4
    sig=$(ossl dgst -sha256 -sign "$dir/$name.key" "$payload" | b64)
    hash=$(sha256sum "$payload" | cut -d' ' -f1)
    cert=$(b64 < "$dir/$name.pem")
    body=$(printf '{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha256","value":"%s"}},"signature":{"content":"%s","publicKey":{"content":"%s"}}}}' "$hash" "$sig" "$cert")
    rekor_entry "$dir" "$body"
    printf '{"dev.cosignproject.cosign/signature":"%s","dev.sigstore.cosign/certificate":%s,"dev.sigstore.cosign/chain":%s,"dev.sigstore.cosign/bundle":"%s"}' \
      "$sig" "$(json_string "$dir/$name.pem")" "$(json_string "$dir/ca.pem")" \
      "$(printf '{"SignedEntryTimestamp":"%s","Payload":{"body":"%s","integratedTime":%s,"logIndex":%s,"logID":"%s"}}' \
        "$SET" "$(printf '%s' "$body" | b64)" "$TIME" "$INDEX" "$LOG_ID" | sed 's/"/\\"/g')"
    ;;
  bundle | bundle-key)
    dir=$2 signer=$3 statement=$4
    type=application/vnd.in-toto+json
    { printf 'DSSEv1 %s %s %s ' "${#type}" "$type" "$(wc -c < "$statement" | tr -d ' ')"; cat "$statement"; } > "$dir/pae"
    if [ "$1" = bundle-key ]; then
      sig=$(ossl dgst -sha256 -sign "$signer" "$dir/pae" | b64)
      material='"publicKey":{"hint":""},"tlogEntries":[]'
    else
      sig=$(ossl dgst -sha256 -sign "$dir/$signer.key" "$dir/pae" | b64)
      cert_pem=$(b64 < "$dir/$signer.pem")
      body=$(printf '{"apiVersion":"0.0.1","kind":"dsse","spec":{"payloadHash":{"algorithm":"sha256","value":"%s"},"signatures":[{"signature":"%s","verifier":"%s"}]}}' \
        "$(sha256sum "$statement" | cut -d' ' -f1)" "$sig" "$cert_pem")
      rekor_entry "$dir" "$body"
      material=$(printf '"certificate":{"rawBytes":"%s"},"tlogEntries":[{"logIndex":"%s","logId":{"keyId":"%s"},"kindVersion":{"kind":"dsse","version":"0.0.1"},"integratedTime":"%s","inclusionPromise":{"signedEntryTimestamp":"%s"},"inclusionProof":%s,"canonicalizedBody":"%s"}]' \
        "$(ossl x509 -in "$dir/$signer.pem" -outform DER | b64)" "$INDEX" "$LOG_ID_B64" "$TIME" "$SET" \
        "$(inclusion_proof "$dir" "$body")" "$(printf '%s' "$body" | b64)")
    fi
    printf '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{%s},"dsseEnvelope":{"payload":"%s","payloadType":"%s","signatures":[{"sig":"%s","keyid":""}]}}' \
      "$material" "$(b64 < "$statement")" "$type" "$sig"
    ;;
  *)
    echo "sigstore.sh: unknown command $1" >&2
    exit 2
    ;;
esac

package io.hsmbridge.client;

import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletionStage;

/** The user's keys in the cluster: creation (replicated to every HSM before it returns) and look-up. */
public final class Keys {
  private final HsmClient client;

  Keys(HsmClient client) {
    this.client = client;
  }

  /** A new key with the spec's default usage and a generated label ({@code key-} and 8 hex characters). */
  public KeyHandle generate(KeySpec spec) {
    return generate(KeyRequest.of(spec));
  }

  /** A new key labelled {@code label}, with the spec's default usage. */
  public KeyHandle generate(KeySpec spec, String label) {
    return generate(KeyRequest.of(spec).label(label));
  }

  /**
   * A new key as {@code request} says. With a request id, sending the same request again (after a timeout, a
   * lost connection, a restart of the application) returns the key the first made, never a second key.
   */
  public KeyHandle generate(KeyRequest request) {
    Objects.requireNonNull(request, "request");
    return client.call(h -> new KeyHandle(client, create(h, request)));
  }

  /** {@link #generate(KeyRequest)}, asynchronously. */
  public CompletionStage<KeyHandle> generateAsync(KeyRequest request) {
    Objects.requireNonNull(request, "request");
    return client.callAsync(h -> new KeyHandle(client, create(h, request)));
  }

  /** The creation itself, with the request's id on the mutation when it has one. */
  private static KeyInfo create(Hsm h, KeyRequest request) {
    Hsm view = request.requestId() == null ? h : h.withRequestId(request.requestId());
    return view.generateKey(request.spec(), request.labelOrDefault(), request.usage(), false);
  }

  /**
   * The key with this id.
   *
   * @throws HsmBridgeException UNKNOWN_KEY when there is none the user may see
   */
  public KeyHandle get(String keyId) {
    return new KeyHandle(client, client.call(h -> h.describe(keyId)));
  }

  /** Every key the user owns or may use. */
  public List<KeyHandle> list() {
    List<KeyHandle> out = new ArrayList<>();
    for (KeyInfo k : client.call(Hsm::listKeys)) {
      out.add(new KeyHandle(client, k));
    }
    return out;
  }

  /** The keys labelled exactly {@code label}. */
  public List<KeyHandle> find(String label) {
    List<KeyHandle> out = new ArrayList<>();
    for (KeyInfo k : client.call(h -> h.listKeys(Objects.requireNonNull(label, "label")))) {
      out.add(new KeyHandle(client, k));
    }
    return out;
  }

  /** What to create: a spec, and optionally a label, a usage and a request id. */
  public static final class KeyRequest {
    private final KeySpec spec;
    private String label;
    private KeyUsage usage;
    private String requestId;

    private KeyRequest(KeySpec spec) {
      this.spec = Objects.requireNonNull(spec, "spec");
    }

    public static KeyRequest of(KeySpec spec) {
      return new KeyRequest(spec);
    }

    /** The label (1..64 characters); default {@code key-} and 8 random hex characters. */
    public KeyRequest label(String label) {
      this.label = Objects.requireNonNull(label, "label");
      return this;
    }

    /** The usage; default the spec's ({@link KeyUsage#defaultFor}). */
    public KeyRequest usage(KeyUsage usage) {
      this.usage = Objects.requireNonNull(usage, "usage");
      return this;
    }

    /** 1..64 characters that make the creation safe to send again. */
    public KeyRequest requestId(String id) {
      this.requestId = Objects.requireNonNull(id, "requestId");
      return this;
    }

    KeySpec spec() {
      return spec;
    }

    KeyUsage usage() {
      return usage;
    }

    String requestId() {
      return requestId;
    }

    String labelOrDefault() {
      if (label != null) {
        return label;
      }
      byte[] b = new byte[4];
      new java.security.SecureRandom().nextBytes(b);
      return "key-" + java.util.HexFormat.of().formatHex(b);
    }
  }
}

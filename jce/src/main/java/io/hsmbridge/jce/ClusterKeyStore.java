package io.hsmbridge.jce;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.client.KeyInfo;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyStoreException;
import java.security.KeyStoreSpi;
import java.security.UnrecoverableKeyException;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Date;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code KeyStore} "HsmBridge": a view of the keys the provider's user may use in the cluster.
 * Aliases are key labels (a label that several keys share is listed as each key's id instead; a key id
 * is always accepted as an alias). {@code getKey} returns a handle ({@link HsmKey}, {@link HsmPrivateKey})
 * and ignores the password (the provider's login decides); {@code getCertificateChain} returns the chain
 * stored beside a key pair in the cluster, and {@code setKeyEntry} with a handle stores one there (and
 * relabels the key when the alias differs). Every call asks the cluster: the store holds nothing, and
 * {@code load}/{@code store} move no bytes. Key material cannot enter through the store (use the
 * provider's generators, or the cluster's wrapped import), and trusted-certificate entries are not kept.
 */
final class ClusterKeyStore extends KeyStoreSpi {
  private static final java.util.regex.Pattern KEY_ID = java.util.regex.Pattern.compile("[0-9a-f]{32}");
  private final HsmBridgeProvider provider;

  ClusterKeyStore(HsmBridgeProvider provider) {
    this.provider = provider;
  }

  @Override
  public void engineLoad(InputStream stream, char[] password) throws IOException {
    if (stream != null) {
      throw new IOException("the HsmBridge KeyStore is the cluster itself: load(null, null)");
    }
  }

  @Override
  public void engineStore(OutputStream stream, char[] password) {
    // Nothing to write: every change was made in the cluster when it was asked for.
  }

  /** Alias to key description, of the keys visible now. */
  private Map<String, KeyInfo> byAlias() {
    List<KeyInfo> keys = call("listing the keys", Hsm::listKeys);
    Map<String, Integer> labelCount = new HashMap<>();
    for (KeyInfo k : keys) {
      labelCount.merge(k.label(), 1, Integer::sum);
    }
    Map<String, KeyInfo> aliases = new LinkedHashMap<>();
    for (KeyInfo k : keys) {
      aliases.put(labelCount.get(k.label()) == 1 ? k.label() : k.keyId(), k);
    }
    return aliases;
  }

  /**
   * The key an alias names: the one key with that label, else the key with that id; null when none (or when
   * several keys share the label: {@link #engineGetKey} says so). Asks the cluster for that label only.
   */
  private KeyInfo find(String alias) {
    return find(alias, labelled(alias));
  }

  /** {@link #find(String)} given the keys labelled {@code alias} (asked once by the caller). */
  private KeyInfo find(String alias, List<KeyInfo> labelled) {
    if (labelled.size() == 1) {
      return labelled.get(0);
    }
    if (labelled.isEmpty() && alias != null && KEY_ID.matcher(alias).matches()) {
      try {
        return provider.client().call(h -> h.describe(alias));
      } catch (HsmBridgeException e) {
        if (e.code() == ErrorCode.UNKNOWN_KEY) {
          return null;
        }
        throw Engines.failure("finding " + alias, e);
      }
    }
    return null;
  }

  private List<KeyInfo> labelled(String alias) {
    return alias == null ? List.of() : call("finding " + alias, h -> h.listKeys(alias));
  }

  @Override
  public Key engineGetKey(String alias, char[] password) throws UnrecoverableKeyException {
    List<KeyInfo> labelled = labelled(alias);
    KeyInfo k = find(alias, labelled);
    if (k == null) {
      int sharing = labelled.size();
      if (sharing > 1) {
        throw new UnrecoverableKeyException(sharing + " keys are labelled " + alias + ": use a key's id as the alias"
            + " (aliases() lists them)");
      }
      return null;
    }
    try {
      return call("reading key " + k.keyId(), h -> {
        try {
          return Handles.of(k, () -> h.publicKey(k.keyId()));
        } catch (GeneralSecurityException e) {
          throw new IllegalStateException(e);
        }
      });
    } catch (IllegalStateException e) {
      UnrecoverableKeyException u = new UnrecoverableKeyException("the public key of " + k.keyId() + " does not decode");
      u.initCause(e.getCause());
      throw u;
    }
  }

  @Override
  public Certificate[] engineGetCertificateChain(String alias) {
    KeyInfo k = find(alias);
    if (k == null || !KeySpec.parse(k.spec()).family().isAsymmetric()) {
      return null;
    }
    List<byte[]> der = call("reading the certificates of " + k.keyId(), h -> h.certificates(k.keyId()));
    if (der.isEmpty()) {
      return null;
    }
    try {
      CertificateFactory cf = CertificateFactory.getInstance("X.509");
      Certificate[] chain = new Certificate[der.size()];
      for (int i = 0; i < chain.length; i++) {
        chain[i] = cf.generateCertificate(new ByteArrayInputStream(der.get(i)));
      }
      return chain;
    } catch (CertificateException e) {
      throw new java.security.ProviderException("the chain stored with " + k.keyId() + " does not decode", e);
    }
  }

  @Override
  public Certificate engineGetCertificate(String alias) {
    Certificate[] chain = engineGetCertificateChain(alias);
    return chain == null ? null : chain[0];
  }

  /** The cluster does not say when a key was made: null. */
  @Override
  public Date engineGetCreationDate(String alias) {
    return null;
  }

  @Override
  public void engineSetKeyEntry(String alias, Key key, char[] password, Certificate[] chain) throws KeyStoreException {
    if (!(key instanceof HsmKey h)) {
      throw new KeyStoreException("key bytes cannot enter the cluster through the KeyStore: make keys with this"
          + " provider's KeyGenerator/KeyPairGenerator, or import a wrapped key (hsmbridge key import)");
    }
    if (chain != null && chain.length > 0 && !(key instanceof HsmPrivateKey)) {
      throw new KeyStoreException("a certificate chain belongs to a key pair; " + h.keyId() + " is " + h.spec());
    }
    try {
      call("storing the entry of " + h.keyId(), c -> {
        if (alias != null && !alias.equals(h.label())) {
          c.setLabel(h.keyId(), alias);
        }
        if (chain != null && chain.length > 0) {
          List<byte[]> der = new ArrayList<>(chain.length);
          for (Certificate cert : chain) {
            try {
              der.add(cert.getEncoded());
            } catch (java.security.cert.CertificateEncodingException e) {
              throw new IllegalArgumentException("a certificate of the chain does not encode: " + e.getMessage(), e);
            }
          }
          c.setCertificates(h.keyId(), der);
        }
        return null;
      });
    } catch (IllegalArgumentException | java.security.ProviderException e) {
      throw new KeyStoreException(e.getMessage(), e);
    }
  }

  @Override
  public void engineSetKeyEntry(String alias, byte[] key, Certificate[] chain) throws KeyStoreException {
    throw new KeyStoreException("key bytes cannot enter the cluster through the KeyStore: make keys with this"
        + " provider's generators, or import a wrapped key (hsmbridge key import)");
  }

  @Override
  public void engineSetCertificateEntry(String alias, Certificate cert) throws KeyStoreException {
    throw new KeyStoreException("the cluster keeps certificates beside their keys only (setKeyEntry with a key"
        + " handle); keep trusted certificates in a JDK KeyStore");
  }

  /** Deletes the key in the cluster, on every HSM (and its chain). */
  @Override
  public void engineDeleteEntry(String alias) throws KeyStoreException {
    KeyInfo k = find(alias);
    if (k == null) {
      throw new KeyStoreException("no key has the alias " + alias);
    }
    try {
      call("deleting " + k.keyId(), h -> {
        h.delete(k.keyId());
        return null;
      });
    } catch (java.security.ProviderException e) {
      throw new KeyStoreException(e.getMessage(), e);
    }
  }

  @Override
  public Enumeration<String> engineAliases() {
    return Collections.enumeration(new ArrayList<>(byAlias().keySet()));
  }

  @Override
  public boolean engineContainsAlias(String alias) {
    return find(alias) != null;
  }

  @Override
  public int engineSize() {
    return byAlias().size();
  }

  @Override
  public boolean engineIsKeyEntry(String alias) {
    return find(alias) != null;
  }

  @Override
  public boolean engineIsCertificateEntry(String alias) {
    return false;
  }

  /** The alias of the key pair whose stored chain starts with {@code cert}, or null. */
  @Override
  public String engineGetCertificateAlias(Certificate cert) {
    for (Map.Entry<String, KeyInfo> e : byAlias().entrySet()) {
      if (KeySpec.parse(e.getValue().spec()).family().isAsymmetric()) {
        Certificate[] chain = engineGetCertificateChain(e.getValue().keyId());
        if (chain != null && chain[0].equals(cert)) {
          return e.getKey();
        }
      }
    }
    return null;
  }

  private <T> T call(String what, java.util.function.Function<Hsm, T> f) {
    try {
      return provider.client().call(f);
    } catch (HsmBridgeException e) {
      if (e.code() == ErrorCode.UNKNOWN_KEY) {
        throw new java.security.ProviderException(what + ": the key is gone (" + e.getMessage() + ")", e);
      }
      throw Engines.failure(what, e);
    }
  }
}

package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.io.InputStream;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/** Vendor profiles as data: strict parsing, selection, operator profiles, and the start-up probe. */
class VendorProfileTest {
  @TempDir
  Path tmp;

  static Properties softhsm2() throws IOException {
    Properties p = new Properties();
    try (InputStream in = VendorProfiles.class.getResourceAsStream("/io/hsmbridge/pkcs11/profiles/softhsm2.properties")) {
      p.load(in);
    }
    return p;
  }

  static List<String> allKeys() throws IOException {
    return List.copyOf(new TreeSet<>(softhsm2().stringPropertyNames()));
  }

  private static void write(Path file, Properties p) throws IOException {
    StringWriter w = new StringWriter();
    p.store(w, null);
    Files.writeString(file, w.toString(), StandardCharsets.UTF_8);
  }

  // ---- the built-in profile ----

  @Test
  void builtInSofthsm2ParsesWithTheMeasuredFacts() {
    VendorProfile p = VendorProfiles.builtIn().all().stream().filter(v -> v.name().equals("softhsm2")).findFirst().orElseThrow();
    assertEquals(List.of("SHA1"), p.oaepHashes());
    assertFalse(p.oaepLabel());
    assertEquals("SO", p.trustedSetBy());
    assertFalse(p.trustedObjectPrivate());
    assertTrue(p.wrapWithTrustedEnforced());
    assertFalse(p.unwrapTemplateMerged());
    assertTrue(p.ecdsaRawSignature());
    assertEquals(0, p.maxSessions());
    assertEquals("softhsm2-files", p.objectStore());
    assertTrue(p.requiredMechanisms().contains("CKM_AES_KEY_WRAP_PAD"));
    assertTrue(p.requiredMechanisms().contains("CKM_EDDSA"));
  }

  @Test
  void builtInSofthsm2IsSelectedForTheLoadedLibrary() {
    Pkcs11Library lib = Pkcs11Library.load(SoftHsmFixture.library());
    VendorProfile p = VendorProfiles.builtIn().select(lib.manufacturer(), lib.description(), lib.versionMajor(), lib.versionMinor());
    assertEquals("softhsm2", p.name());
    assertTrue(lib.manufacturer().startsWith("SoftHSM"), lib.manufacturer());
    assertSame(lib, Pkcs11Library.load(SoftHsmFixture.library()), "one instance per library path");
  }

  @ParameterizedTest
  @CsvSource({
      "SoftHSM, Implementation of PKCS11, 2, 5, true",
      "SoftHSM project, Implementation of PKCS11 , 2, 6, true",
      "SoftHSM, Implementation of PKCS11, 2, 99, true",
      "SoftHSM, Implementation of PKCS11, 2, 4, false",
      "SoftHSM, Implementation of PKCS11, 3, 0, false",
      "SoftHSM, Implementation of PKCS11, 1, 99, false",
      "OpenSC, Implementation of PKCS11, 2, 6, false",
      "SoftHSM, NSS Internal Crypto Services, 2, 6, false"})
  void matchingUsesManufacturerDescriptionAndVersionRange(String manufacturer, String description, int major, int minor,
      boolean matches) throws Exception {
    VendorProfile p = VendorProfile.parse(softhsm2(), "test");
    assertEquals(matches, p.matches(manufacturer, description, major, minor));
  }

  @Test
  void noMatchingProfileIsTokenProfileMismatchNamingTheLibrary() {
    HsmException e = assertHsm(ErrorCode.TOKEN_PROFILE_MISMATCH,
        () -> VendorProfiles.builtIn().select("Acme HSM Corp", "Acme Cryptoki", 7, 1));
    assertTrue(e.getMessage().contains("Acme Cryptoki") && e.getMessage().contains("Acme HSM Corp")
        && e.getMessage().contains("7.1"), e.getMessage());
    assertTrue(e.getMessage().contains("profiles.dir"), "says how to fix it: " + e.getMessage());
  }

  // ---- strict parsing: every failure is CONFIG_INVALID naming the source and the key ----

  @Test
  void unknownKeyIsRefused() throws Exception {
    Properties p = softhsm2();
    p.setProperty("wrapWithTrusted.enforcd", "true");
    HsmException e = assertHsm(ErrorCode.CONFIG_INVALID, () -> VendorProfile.parse(p, "acme.properties"));
    assertTrue(e.getMessage().contains("acme.properties") && e.getMessage().contains("wrapWithTrusted.enforcd"), e.getMessage());
  }

  @ParameterizedTest
  @MethodSource("allKeys")
  void everyMissingKeyIsRefusedByName(String key) throws Exception {
    Properties p = softhsm2();
    p.remove(key);
    HsmException e = assertHsm(ErrorCode.CONFIG_INVALID, () -> VendorProfile.parse(p, "acme.properties"));
    assertTrue(e.getMessage().contains(key) && e.getMessage().contains("acme.properties"), e.getMessage());
  }

  @ParameterizedTest
  @CsvSource({
      "oaep.label, yes", "trusted.objectPrivate, 1", "wrapWithTrusted.enforced, enforced", "unwrapTemplate.merged, ''",
      "trusted.setBy, ADMIN", "ecdsa.signature, asn1", "integrity.objectStore, sqlite",
      "sessions.max, -1", "sessions.max, many", "match.libraryVersion.min, 2", "match.libraryVersion.max, 2.x",
      "name, ''", "match.manufacturer, ''", "oaep.hashes, ''"})
  void badValuesAreRefusedByName(String key, String value) throws Exception {
    Properties p = softhsm2();
    p.setProperty(key, value);
    HsmException e = assertHsm(ErrorCode.CONFIG_INVALID, () -> VendorProfile.parse(p, "acme.properties"));
    assertTrue(e.getMessage().contains(key), e.getMessage());
  }

  @Test
  void booleansAreCaseInsensitiveAndEmptyDescriptionMatchesAny() throws Exception {
    Properties p = softhsm2();
    p.setProperty("oaep.label", "TRUE");
    p.setProperty("match.libraryDescription", "");
    VendorProfile v = VendorProfile.parse(p, "x");
    assertTrue(v.oaepLabel());
    assertTrue(v.matches("SoftHSM", "anything at all", 2, 6));
  }

  @Test
  void unknownMechanismIsRefusedByName() throws Exception {
    Properties p = softhsm2();
    p.setProperty("mechanisms.required", "CKM_AES_GCM, CKM_AES_FROBNICATE");
    HsmException e = assertHsm(ErrorCode.CONFIG_INVALID, () -> VendorProfile.parse(p, "acme.properties"));
    assertTrue(e.getMessage().contains("CKM_AES_FROBNICATE") && e.getMessage().contains("mechanisms.required"), e.getMessage());
  }

  // ---- operator profile directories ----

  @Test
  void operatorProfilesComeFirstInNameOrderThenTheBuiltIns() throws Exception {
    Properties acme = softhsm2();
    acme.setProperty("name", "acme");
    acme.setProperty("match.manufacturer", "Acme");
    acme.setProperty("match.libraryDescription", "");
    write(tmp.resolve("b-acme.properties"), acme);
    Properties mine = softhsm2();
    mine.setProperty("name", "my-softhsm");
    mine.setProperty("sessions.max", "3");
    write(tmp.resolve("a-mine.properties"), mine);
    Files.writeString(tmp.resolve("README.txt"), "not a profile"); // ignored: not *.properties

    VendorProfiles all = VendorProfiles.load(tmp);
    assertEquals(List.of("my-softhsm", "acme", "softhsm2"), all.all().stream().map(VendorProfile::name).toList());
    assertEquals("acme", all.select("Acme HSM", "whatever", 2, 6).name());
    assertEquals("my-softhsm", all.select("SoftHSM", "Implementation of PKCS11", 2, 6).name(), "the operator's wins");
    assertEquals(3, all.select("SoftHSM", "Implementation of PKCS11", 2, 6).maxSessions());
  }

  @Test
  void operatorProfileCapsTheSessionPool() throws Exception {
    Properties mine = softhsm2();
    mine.setProperty("name", "capped");
    mine.setProperty("sessions.max", "2");
    write(tmp.resolve("capped.properties"), mine);
    TokenConfig c = withProfiles(SoftHsmFixture.newToken("capped"), tmp);
    try (HsmToken hsm = HsmToken.open(c)) {
      assertEquals("capped", hsm.profile().name());
      assertEquals(2, hsm.sessionCapacity());
    }
  }

  @Test
  void aBadOperatorProfileFailsTheWholeLoadNamingTheFile() throws Exception {
    Properties bad = softhsm2();
    bad.setProperty("ecdsa.signature", "sometimes");
    Path file = tmp.resolve("broken.properties");
    write(file, bad);
    HsmException e = assertHsm(ErrorCode.CONFIG_INVALID, () -> VendorProfiles.load(tmp));
    assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("ecdsa.signature"), e.getMessage());
    // and HsmToken.open refuses to start with it
    TokenConfig c = withProfiles(SoftHsmFixture.newToken("badprofile"), tmp);
    assertHsm(ErrorCode.CONFIG_INVALID, () -> HsmToken.open(c));
  }

  @Test
  void missingProfileDirectoryIsConfigInvalid() {
    Path dir = tmp.resolve("nope");
    HsmException e = assertHsm(ErrorCode.CONFIG_INVALID, () -> VendorProfiles.load(dir));
    assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
  }

  // ---- the probe: a profile that lies about the token stops start-up ----

  @Test
  void profileClaimingWrapWithTrustedIsNotEnforcedFailsStartUp() throws Exception {
    TokenConfig base = SoftHsmFixture.newToken("probe");
    HsmToken.open(base).close(); // initialise it with the correct profile first
    Properties lying = softhsm2();
    lying.setProperty("name", "lying-softhsm");
    lying.setProperty("wrapWithTrusted.enforced", "false");
    write(tmp.resolve("lying.properties"), lying);
    TokenConfig c = withProfiles(base, tmp);
    HsmException e = assertHsm(ErrorCode.TOKEN_PROFILE_MISMATCH, () -> HsmToken.open(c));
    assertTrue(e.getMessage().contains("lying-softhsm") && e.getMessage().contains("WRAP_WITH_TRUSTED"), e.getMessage());
    assertProbeLeftNothing(base);
  }

  @Test
  void profileClaimingDerEcdsaSignaturesFailsStartUp() throws Exception {
    TokenConfig base = SoftHsmFixture.newToken("probe-ecdsa");
    HsmToken.open(base).close();
    Properties lying = softhsm2();
    lying.setProperty("name", "der-softhsm");
    lying.setProperty("ecdsa.signature", "der");
    write(tmp.resolve("der.properties"), lying);
    HsmException e = assertHsm(ErrorCode.TOKEN_PROFILE_MISMATCH, () -> HsmToken.open(withProfiles(base, tmp)));
    assertTrue(e.getMessage().contains("CKM_ECDSA"), e.getMessage());
    assertProbeLeftNothing(base);
  }

  @Test
  void profileClaimingOaepWithSha256FailsStartUp() throws Exception {
    TokenConfig base = SoftHsmFixture.newToken("probe-oaep");
    HsmToken.open(base).close();
    Properties lying = softhsm2();
    lying.setProperty("name", "oaep256-softhsm");
    lying.setProperty("oaep.hashes", "SHA1, SHA256");
    write(tmp.resolve("oaep.properties"), lying);
    HsmException e = assertHsm(ErrorCode.TOKEN_PROFILE_MISMATCH, () -> HsmToken.open(withProfiles(base, tmp)));
    assertTrue(e.getMessage().contains("RSA-OAEP with SHA256 fails"), e.getMessage());
    assertFalse(e.getMessage().contains("with SHA1 fails"), "SHA1 works on SoftHSM2: " + e.getMessage());
    assertProbeLeftNothing(base);
  }

  @Test
  void profileRequiringAMechanismTheTokenLacksFailsStartUp() throws Exception {
    TokenConfig base = SoftHsmFixture.newToken("probe-mech");
    HsmToken.open(base).close();
    Properties greedy = softhsm2();
    greedy.setProperty("name", "greedy");
    greedy.setProperty("mechanisms.required", "CKM_AES_GCM, CKM_CHACHA20_POLY1305");
    write(tmp.resolve("greedy.properties"), greedy);
    HsmException e = assertHsm(ErrorCode.TOKEN_PROFILE_MISMATCH, () -> HsmToken.open(withProfiles(base, tmp)));
    assertTrue(e.getMessage().contains("lacks CKM_CHACHA20_POLY1305"), e.getMessage());
  }

  /** The probe works on session objects: no token object is left, and the right profile still opens. */
  private static void assertProbeLeftNothing(TokenConfig base) {
    try (HsmToken hsm = HsmToken.open(base); TokenInspector inspector = new TokenInspector(base)) {
      assertEquals("softhsm2", hsm.profile().name());
      assertEquals(0, inspector.objectCount());
      int all = inspector.call(s -> s.findAllObjectsSingle(new org.xipki.pkcs11.wrapper.AttributeVector()).length);
      assertEquals(0, all, "no session objects either");
    }
  }

  static TokenConfig withProfiles(TokenConfig c, Path dir) {
    return new TokenConfig(c.libraryPath(), c.tokenLabel(), c.tokenSerial(), c.userPin(), c.soPin(), c.initialize(),
        c.maxSessions(), c.borrowTimeout(), dir, c.repairCorruption());
  }
}

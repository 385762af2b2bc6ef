package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The start-up integrity scan against real SoftHSM2 token directories: a 0-byte object file (what a
 * crash mid-write leaves) stops start-up with TOKEN_CORRUPTED, and repair moves it to quarantine.
 */
class IntegrityScanTest {
  private static final byte[] M = {1, 2, 3};

  private static Path plantBrokenObject(String label) throws Exception {
    Path dir = SoftHsmFixture.tokenDirectory(label);
    String name = UUID.randomUUID().toString();
    Path broken = Files.createFile(dir.resolve(name + ".object"));
    Files.createFile(dir.resolve(name + ".lock"));
    return broken;
  }

  private static void assertUsable(HsmToken hsm, String aes, String ec) {
    CryptoService.Encrypted e = hsm.crypto().encrypt(aes, Algorithm.AES_GCM, M, null);
    assertArrayEquals(M, hsm.crypto().decrypt(aes, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
    assertTrue(hsm.crypto().verify(ec, Algorithm.ECDSA_SHA256, M, hsm.crypto().sign(ec, Algorithm.ECDSA_SHA256, M)));
  }

  @Test
  void brokenObjectStopsStartUpAndRepairQuarantinesIt() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("integrity");
    String aes;
    String ec;
    List<KeyInfo> keys;
    try (HsmToken hsm = HsmToken.open(config)) {
      aes = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "aes", false).keyId();
      ec = hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec", false).keyId();
      keys = hsm.keys().list();
    }
    Path broken = plantBrokenObject(config.tokenLabel());

    HsmException e = assertHsm(ErrorCode.TOKEN_CORRUPTED, () -> HsmToken.open(config));
    assertTrue(e.getMessage().contains(broken.toString()), "names the file: " + e.getMessage());
    assertTrue(e.getMessage().contains("integrity.repair=true"), "says how to repair: " + e.getMessage());
    assertTrue(Files.exists(broken), "nothing is moved without repair");

    try (HsmToken hsm = HsmToken.open(config.withRepair(true))) {
      IntegrityScan.Report report = hsm.integrity();
      assertFalse(report.clean());
      assertTrue(report.repaired());
      assertEquals(List.of(broken), report.broken());
      assertFalse(Files.exists(broken), "still in the token directory");
      assertFalse(Files.exists(broken.resolveSibling(broken.getFileName().toString().replace(".object", ".lock"))));
      Path quarantined = report.quarantine().resolve(broken.getParent().getFileName() + "-" + broken.getFileName());
      assertTrue(Files.exists(quarantined), "not in quarantine: " + quarantined);
      assertTrue(report.quarantine().startsWith(SoftHsmFixture.root().resolve("hsmbridge-quarantine")), report.quarantine().toString());
      assertEquals(keys, hsm.keys().list());
      assertUsable(hsm, aes, ec);
    }
    // and the next start is clean without repair
    try (HsmToken hsm = HsmToken.open(config)) {
      assertTrue(hsm.integrity().clean());
      assertUsable(hsm, aes, ec);
    }
  }

  @Test
  void aBrokenObjectAppearingWhileTheTokenIsOpenIsFoundAtTheNextStart() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("integrity-live");
    String aes;
    String ec;
    Path broken;
    try (HsmToken hsm = HsmToken.open(config)) {
      aes = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "aes", false).keyId();
      ec = hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec", false).keyId();
      broken = plantBrokenObject(config.tokenLabel());
      // SoftHSM2 2.6.1 skips a 0-byte object file when it re-indexes the directory (here: after the
      // next key generation), so the running process notices nothing; only the next start does.
      hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "after", false);
      assertUsable(hsm, aes, ec);
      IntegrityScan.checkSearchable(hsm.pool());
      hsm.keys().reload();
      assertEquals(3, hsm.keys().count());
    }
    assertHsm(ErrorCode.TOKEN_CORRUPTED, () -> HsmToken.open(config));
    // SoftHSM2 has seen the file in this process; after the move it must not miss it
    try (HsmToken hsm = HsmToken.open(config.withRepair(true))) {
      assertEquals(List.of(broken), hsm.integrity().broken());
      assertEquals(3, hsm.keys().count());
      assertUsable(hsm, aes, ec);
      IntegrityScan.checkSearchable(hsm.pool());
    }
  }

  @Test
  void theScanLooksOnlyAtTheConfiguredTokensDirectory() throws Exception {
    // labels where one is a prefix of the other: "t-7" must not inherit the broken files of "t-77"
    String base = "prefix-" + System.nanoTime() % 100000;
    Path pins = SoftHsmFixture.root().resolve("pins");
    TokenConfig shortOne = TokenConfig.of(SoftHsmFixture.library(), base,
        PinSource.fromFile(SoftHsmFixture.writePin(pins.resolve(base + ".user"))),
        PinSource.fromFile(SoftHsmFixture.writePin(pins.resolve(base + ".so"))), true);
    TokenConfig longOne = TokenConfig.of(SoftHsmFixture.library(), base + "7",
        PinSource.fromFile(SoftHsmFixture.writePin(pins.resolve(base + "7.user"))),
        PinSource.fromFile(SoftHsmFixture.writePin(pins.resolve(base + "7.so"))), true);
    HsmToken.open(shortOne).close();
    HsmToken.open(longOne).close();
    Path broken = plantBrokenObject(longOne.tokenLabel());
    try (HsmToken hsm = HsmToken.open(shortOne)) {
      assertTrue(hsm.integrity().clean(), "reported another token's file: " + hsm.integrity().broken());
    }
    try (HsmToken hsm = HsmToken.open(shortOne.withRepair(true))) {
      assertTrue(hsm.integrity().clean());
    }
    assertTrue(Files.exists(broken), "repair of one token moved another token's file");
    assertHsm(ErrorCode.TOKEN_CORRUPTED, () -> HsmToken.open(longOne));
    try (HsmToken hsm = HsmToken.open(longOne.withRepair(true))) {
      assertEquals(List.of(broken), hsm.integrity().broken());
    }
  }

  @Test
  void nonEmptyObjectFilesAreNotReported() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("integrity-clean");
    try (HsmToken hsm = HsmToken.open(config)) {
      hsm.keys().generate(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "h", false);
    }
    try (Stream<Path> files = Files.list(SoftHsmFixture.tokenDirectory(config.tokenLabel()))) {
      assertTrue(files.anyMatch(f -> f.toString().endsWith(".object") && !f.endsWith("token.object")));
    }
    try (HsmToken hsm = HsmToken.open(config.withRepair(true))) {
      assertTrue(hsm.integrity().clean());
      assertFalse(hsm.integrity().repaired());
      assertEquals(1, hsm.keys().count());
    }
  }
}

package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.ErrorCode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/** Loads vendor profiles (operator directory first, then built-in) and picks the one for a library. */
public final class VendorProfiles {
  private static final String BUILT_IN = "/io/hsmbridge/pkcs11/profiles/";

  private final List<VendorProfile> profiles;

  private VendorProfiles(List<VendorProfile> profiles) {
    this.profiles = List.copyOf(profiles);
  }

  /** Built-in profiles only. */
  public static VendorProfiles builtIn() {
    return load(null);
  }

  /**
   * Operator profiles from {@code dir} ({@code *.properties}, tried first, in name order) followed by
   * the built-in ones. Any bad file fails the whole load: a silently skipped profile would let a
   * token run with the wrong quirks.
   */
  public static VendorProfiles load(Path dir) {
    List<VendorProfile> all = new ArrayList<>();
    if (dir != null) {
      try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*.properties")) {
        List<Path> sorted = new ArrayList<>();
        files.forEach(sorted::add);
        sorted.sort(null);
        for (Path f : sorted) {
          try (Reader r = Files.newBufferedReader(f, StandardCharsets.UTF_8)) {
            all.add(parse(r, f.toString()));
          }
        }
      } catch (IOException e) {
        throw new HsmException(ErrorCode.CONFIG_INVALID, "cannot read vendor profiles in " + dir + ": " + e.getMessage());
      }
    }
    for (String name : builtInNames()) {
      try (InputStream in = VendorProfiles.class.getResourceAsStream(BUILT_IN + name)) {
        if (in == null) {
          throw new HsmException(ErrorCode.CONFIG_INVALID, "built-in vendor profile " + name + " is missing");
        }
        all.add(parse(new InputStreamReader(in, StandardCharsets.UTF_8), "built-in " + name));
      } catch (IOException e) {
        throw new HsmException(ErrorCode.CONFIG_INVALID, "cannot read built-in profile " + name);
      }
    }
    return new VendorProfiles(all);
  }

  public List<VendorProfile> all() {
    return profiles;
  }

  /**
   * The first profile matching the library's C_GetInfo.
   *
   * @throws HsmException TOKEN_PROFILE_MISMATCH naming the library when none matches
   */
  public VendorProfile select(String manufacturer, String description, int major, int minor) {
    for (VendorProfile p : profiles) {
      if (p.matches(manufacturer, description, major, minor)) {
        return p;
      }
    }
    throw new HsmException(ErrorCode.TOKEN_PROFILE_MISMATCH,
        "no vendor profile matches the PKCS#11 library '" + description.trim() + "' by '" + manufacturer.trim()
            + "' version " + major + "." + minor + "; write one (see docs/vendor-profiles.md) and set profiles.dir");
  }

  private static VendorProfile parse(Reader reader, String source) throws IOException {
    Properties p = new Properties();
    p.load(reader);
    return VendorProfile.parse(p, source);
  }

  private static List<String> builtInNames() {
    List<String> names = new ArrayList<>();
    try (InputStream in = VendorProfiles.class.getResourceAsStream(BUILT_IN + "index.txt")) {
      if (in == null) {
        throw new HsmException(ErrorCode.CONFIG_INVALID, "built-in vendor profile index is missing");
      }
      BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
      for (String line; (line = r.readLine()) != null; ) {
        line = line.trim();
        if (!line.isEmpty() && !line.startsWith("#")) {
          names.add(line);
        }
      }
    } catch (IOException e) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, "cannot read built-in vendor profile index");
    }
    return names;
  }
}

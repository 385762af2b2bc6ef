package io.hsmbridge.cli;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * Files only their owner may read (session tokens, private keys, quorum documents): created 0600 from the
 * first byte, never chmod-ed after writing (that would leave a window in which others could open them),
 * and replaced atomically so a reader never sees half a file.
 */
final class PrivateFiles {
  static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");
  private static final FileAttribute<Set<PosixFilePermission>> OWNER_ONLY_FILE =
      PosixFilePermissions.asFileAttribute(OWNER_ONLY);
  private static final FileAttribute<Set<PosixFilePermission>> OWNER_ONLY_DIR =
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));

  private PrivateFiles() {}

  /** Writes {@code content} to {@code file} (0600), replacing what was there. */
  static void write(Path file, byte[] content) throws IOException {
    writeTo(file, content, true);
  }

  /** Like {@link #write}, but fails with {@link FileAlreadyExistsException} when {@code file} exists. */
  static void create(Path file, byte[] content) throws IOException {
    writeTo(file, content, false);
  }

  private static void writeTo(Path file, byte[] content, boolean replace) throws IOException {
    Path target = file.toAbsolutePath();
    Path dir = target.getParent();
    if (!Files.isDirectory(dir)) {
      Files.createDirectories(dir, OWNER_ONLY_DIR);
    }
    if (!replace && Files.exists(target)) {
      throw new FileAlreadyExistsException(target.toString());
    }
    Path tmp = Files.createTempFile(dir, "." + target.getFileName(), ".tmp", OWNER_ONLY_FILE);
    try {
      Files.write(tmp, content);
      try {
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
      }
    } finally {
      Files.deleteIfExists(tmp);
    }
  }
}

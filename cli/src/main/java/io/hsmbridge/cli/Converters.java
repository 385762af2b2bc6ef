package io.hsmbridge.cli;

import io.hsmbridge.protocol.KeySpec;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Option converters whose errors list the accepted values. */
final class Converters {
  private Converters() {}

  static final class Spec implements ITypeConverter<KeySpec> {
    @Override
    public KeySpec convert(String value) {
      try {
        return KeySpec.parse(value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }
}

"""What an export writes: the CSV check, extra columns, output formats, atomic writes, merges."""

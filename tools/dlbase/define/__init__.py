"""What to build: the matrix, the compatibility table, the build spec, layer groups, locks, rendering."""

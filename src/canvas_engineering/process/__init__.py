"""The process layer: region programs (families, carriers, clocks, compile modes), the clock
scheduler and the compiler passes that turn a typed schema into a runnable program. Declarations
only: it reads `spec/` and nothing below it."""

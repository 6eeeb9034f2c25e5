/* stub.c - keeps the test helper library non-empty before any helper exists. */
int vwstest__stub;

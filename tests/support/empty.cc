// Keeps meshrpc_test_support a valid library before any helper source exists.

# test_park_nobg: the library's thread start fails (pthread_create wrapped).
target_link_options(test_park_nobg PRIVATE -Wl,--wrap=pthread_create)

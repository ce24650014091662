"""`python -m devstack`: start the one-machine stack (see devstack.stack)."""

from devstack.stack import main

if __name__ == "__main__":
    main()

#include <stdio.h>

/* Blobfish Facts, the command-line edition: one fact, then exit. */
int main(void) {
    puts("Blobfish Facts: the blobfish lives 600 to 1200 metres deep,");
    puts("where the pressure is up to 120 times that at the surface.");
    return 0;
}

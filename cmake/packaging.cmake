# Installing and packaging, included by the top-level CMakeLists.txt.
#
#   cmake --install build [--prefix DIR]   gitkvfs and gitkv to bin/ (fs/, cli/), the
#                                          manual pages (man/), and what is below
#   cpack -G DEB --config build/CPackConfig.cmake
#                                          the same as a Debian package, prefix /usr
#
# Beside the binaries and manual pages, an install holds:
#   share/doc/gitkv/README.md and examples/ (the sample configuration file, the
#     systemd units): samples to copy, nothing read from there;
#   lib/systemd/system/gitkvfs@.service: a template unit, inert until an
#     instance is enabled (`systemctl enable --now gitkvfs@NAME`).
# Nothing goes to /etc: an install changes no behaviour by itself.
#
# The Debian package's dependencies are the shared libraries' packages, found
# by dpkg-shlibdeps (dpkg-dev), plus fuse3 for mount.fuse3 and fusermount3;
# git is recommended (the store is a git repository, git reads its history).

set(GITKV_SYSTEMD_UNITDIR "lib/systemd/system"
  CACHE STRING "Where the systemd template unit is installed (relative to the prefix)")
set(GITKV_PACKAGE_MAINTAINER "gitkv maintainers <gitkv@example.org>"
  CACHE STRING "The Maintainer field of the Debian package")

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES
  ${PROJECT_SOURCE_DIR}/examples/gitkvfs.conf
  ${PROJECT_SOURCE_DIR}/examples/gitkvfs@.service
  ${PROJECT_SOURCE_DIR}/examples/srv-gitkv-app.mount
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# The template unit runs /usr/bin/gitkvfs, where the package puts it; an
# install under another prefix (cpack uses its own) gets a unit that runs
# the gitkvfs it installs. Rewritten at install time, when the prefix is known.
if(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
  set(gitkv_bindir_code "${CMAKE_INSTALL_BINDIR}")
else()
  set(gitkv_bindir_code "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}")
endif()
# (The rewritten unit is staged in the build tree, one directory per prefix.)
install(CODE "
  file(READ \"${PROJECT_SOURCE_DIR}/examples/gitkvfs@.service\" gitkv_unit)
  string(REPLACE \"/usr/bin/gitkvfs \" \"${gitkv_bindir_code}/gitkvfs \" gitkv_unit \"\${gitkv_unit}\")
  string(MD5 gitkv_stage \"\${CMAKE_INSTALL_PREFIX}\")
  set(gitkv_stage \"${CMAKE_CURRENT_BINARY_DIR}/unit/\${gitkv_stage}\")
  file(WRITE \"\${gitkv_stage}/gitkvfs@.service\" \"\${gitkv_unit}\")
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${GITKV_SYSTEMD_UNITDIR}\"
       TYPE FILE FILES \"\${gitkv_stage}/gitkvfs@.service\")
")

set(CPACK_PACKAGE_NAME gitkv)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "configuration store in a git repository, mounted as a filesystem")
set(CPACK_PACKAGE_DESCRIPTION
  "gitkvfs mounts a bare git repository as a filesystem: every key is a file, \
every key prefix a directory, and every change a git commit that names who \
made it. Hosts keep their stores in step through ordinary git remotes, and \
changes from elsewhere raise inotify events in the mount. The gitkv command \
reads and writes the same store without a mount.")
set(CPACK_GENERATOR DEB) # `make package`, and cpack without -G
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${GITKV_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "git")
# `make package_source`: the sources, without the git directory and build trees.
set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/")
include(CPack)

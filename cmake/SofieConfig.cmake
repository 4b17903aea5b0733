# find_package(Sofie) support, installed by scripts/install.sh into PREFIX/lib/cmake/Sofie:
# points SOFIE_EXECUTABLE at PREFIX/bin/sofie and provides sofie_add_model (SofieModel.cmake).
get_filename_component(_sofie_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT SOFIE_EXECUTABLE AND EXISTS "${_sofie_prefix}/bin/sofie")
  set(SOFIE_EXECUTABLE "${_sofie_prefix}/bin/sofie" CACHE FILEPATH "the swift-sofie compiler")
endif()
include("${CMAKE_CURRENT_LIST_DIR}/SofieModel.cmake")
set(Sofie_FOUND TRUE)
